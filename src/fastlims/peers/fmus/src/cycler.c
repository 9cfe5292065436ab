/*
 * One channel of a battery cycler (load/source) that imposes a current on a cell.
 *
 *   mode = constant_current (1): current = current_A
 *   mode = follow_setpoint  (2): current = current_setpoint (direct feedthrough)
 *
 * The current is limited to +/- current_limit_A like a real channel. Positive current
 * discharges the connected cell, the same sign convention as battery_cell.I, so
 * cycler.current -> battery_cell.I wires the two directly. charge_Ah integrates the current
 * over time (positive = charge taken from the cell), with the current held over each step.
 */
#include <math.h>
#include <stddef.h>

#include "model.h"

enum { MODE_CONSTANT_CURRENT = 1, MODE_FOLLOW_SETPOINT = 2 };

struct Model {
    int mode;
    double current_A;
    double current_limit_A;
    double current_setpoint;
    double current;
    double charge_Ah;
};

const char MODEL_NAME[] = "cycler";
const size_t MODEL_SIZE = sizeof(Model);

const VariableInfo MODEL_VARIABLES[] = {
    {1, "mode", KIND_ENUM, CAUSALITY_PARAMETER, VARIABILITY_FIXED, offsetof(Model, mode)},
    {2, "current_A", KIND_FLOAT64, CAUSALITY_PARAMETER, VARIABILITY_TUNABLE, offsetof(Model, current_A)},
    {3, "current_limit_A", KIND_FLOAT64, CAUSALITY_PARAMETER, VARIABILITY_FIXED, offsetof(Model, current_limit_A)},
    {20, "current_setpoint", KIND_FLOAT64, CAUSALITY_INPUT, VARIABILITY_CONTINUOUS,
     offsetof(Model, current_setpoint)},
    {30, "current", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, current)},
    {31, "charge_Ah", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, charge_Ah)},
};
const size_t MODEL_VARIABLE_COUNT = sizeof MODEL_VARIABLES / sizeof MODEL_VARIABLES[0];

void model_set_start_values(Model *m) {
    m->mode = MODE_FOLLOW_SETPOINT;
    m->current_A = 5.0;
    m->current_limit_A = 100.0;
    m->current_setpoint = 0.0;
}

ModelStatus model_check_parameters(const Model *m, const Instance *instance) {
    ModelStatus status = MODEL_OK;
    if (m->mode != MODE_CONSTANT_CURRENT && m->mode != MODE_FOLLOW_SETPOINT) {
        instance_log(instance, MODEL_ERROR, "logStatusError",
                     "mode must be 1 (constant_current) or 2 (follow_setpoint), got %d", m->mode);
        status = MODEL_ERROR;
    }
    if (!(m->current_limit_A > 0.0)) {
        instance_log(instance, MODEL_ERROR, "logStatusError", "current_limit_A must be > 0, got %g",
                     m->current_limit_A);
        status = MODEL_ERROR;
    }
    return status;
}

void model_start(Model *m) { m->charge_Ah = 0.0; }

void model_calculate_outputs(Model *m) {
    double wanted = m->mode == MODE_CONSTANT_CURRENT ? m->current_A : m->current_setpoint;
    m->current = fmax(-m->current_limit_A, fmin(m->current_limit_A, wanted));
}

ModelStatus model_do_step(Model *m, const Instance *instance, double time, double step) {
    (void)instance;
    (void)time;
    model_calculate_outputs(m);
    m->charge_Ah += m->current * step / 3600.0;
    return MODEL_OK;
}
