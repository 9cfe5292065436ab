/*
 * Equivalent-circuit battery: an OCV(SOC) source, a series resistance R0 and two RC branches
 * (R1||C1, R2||C2; R2 = 0 gives the 1RC model), with a lumped thermal model. By default one cell;
 * series_cells > 1 makes it a module or pack of identical cells (below).
 *
 *   I > 0 discharges the battery (current flows out of the positive terminal).
 *   dSOC/dt  = -I / (3600 * capacity_Ah)
 *   dv_k/dt  = -v_k / (R_k C_k) + I / C_k            (k = 1, 2)
 *   OCV      = series_cells * OCV_cell(SOC)
 *   V        = OCV - I R0 - v_1 - v_2
 *   Q        = I^2 R0 + v_1^2 / R1 + v_2^2 / R2      (Joule heat, W)
 *   C_th dT/dt = Q - (T - T_ambient) / R_th
 *
 * OCV_cell is an NMC/graphite table, 2.5 V at SOC 0 to 4.2 V at SOC 1; cell_OCV_min_V and
 * cell_OCV_max_V stretch it linearly onto another window (3.0..4.3 V for a cell with a Li-metal
 * anode), keeping its shape. The defaults (2.5, 4.2) are the table itself.
 *
 * A module or pack of series_cells x p identical cells, balanced, is the same circuit with every
 * other parameter the whole battery's: capacity_Ah = p x the cell's; R0, R1, R2 = the cell's x
 * series_cells / p; C1, C2 = the cell's x p / series_cells (the time constants stay the cell's);
 * heat_capacity_J_per_K the sum over the cells, thermal_resistance_K_per_W the cell's / cell
 * count. SOC, T and the heat are the battery's (one lumped temperature).
 *
 * The input is held constant over a communication step. Each step is split into sub-steps of at
 * most internal_step_s; within a sub-step SOC and the RC voltages are updated exactly and the
 * temperature exactly for the sub-step's mean heat, so SOC and the electrical outputs are exact
 * for any step size and the temperature is exact when Q is constant (R1 = R2 = 0).
 *
 * A step that would take SOC below 0 (over-discharge) or above 1 (over-charge) stops at the
 * last valid sub-step and returns an error, so the master can report where the battery left the
 * range in which the model means anything.
 */
#include <math.h>
#include <stddef.h>

#include "model.h"

struct Model {
    /* parameters */
    double capacity_Ah;
    double R0_ohm;
    double R1_ohm;
    double C1_F;
    double R2_ohm;
    double C2_F;
    double SOC0;
    double T0_K;
    double T_ambient_K;
    double heat_capacity_J_per_K;
    double thermal_resistance_K_per_W;
    double internal_step_s;
    double series_cells;
    double cell_OCV_min_V;
    double cell_OCV_max_V;
    /* input */
    double I;
    /* outputs (SOC and T are also states) */
    double V;
    double SOC;
    double T;
    double OCV;
    double P;
    double heat_W;
    /* states not exposed */
    double v1;
    double v2;
};

const char MODEL_NAME[] = "battery_cell";
const size_t MODEL_SIZE = sizeof(Model);

#define FLOAT64(vr, field, causality, variability) \
    { vr, #field, KIND_FLOAT64, causality, variability, offsetof(Model, field) }

const VariableInfo MODEL_VARIABLES[] = {
    FLOAT64(1, capacity_Ah, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(2, R0_ohm, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(3, R1_ohm, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(4, C1_F, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(5, R2_ohm, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(6, C2_F, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(7, SOC0, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(8, T0_K, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(9, T_ambient_K, CAUSALITY_PARAMETER, VARIABILITY_TUNABLE),
    FLOAT64(10, heat_capacity_J_per_K, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(11, thermal_resistance_K_per_W, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(12, internal_step_s, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(13, series_cells, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(14, cell_OCV_min_V, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(15, cell_OCV_max_V, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(20, I, CAUSALITY_INPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(30, V, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(31, SOC, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(32, T, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(33, OCV, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(34, P, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(35, heat_W, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
};
const size_t MODEL_VARIABLE_COUNT = sizeof MODEL_VARIABLES / sizeof MODEL_VARIABLES[0];

/* Open-circuit voltage of an NMC/graphite cell at SOC = 0, 0.05, ..., 1 (V); linear in between. SOC 0
 * is the 2.5 V end of discharge, with the steep knee real cells have below 5 %. */
#define OCV_POINTS 21
static const double OCV_TABLE[OCV_POINTS] = {
    2.500, 3.300, 3.450, 3.510, 3.550, 3.585, 3.615, 3.640, 3.665, 3.690, 3.720,
    3.755, 3.795, 3.840, 3.885, 3.930, 3.975, 4.020, 4.070, 4.130, 4.200,
};

static double ocv_table(double soc) {
    if (soc <= 0.0) return OCV_TABLE[0];
    if (soc >= 1.0) return OCV_TABLE[OCV_POINTS - 1];
    double position = soc * (OCV_POINTS - 1);
    int i = (int)position;
    if (i >= OCV_POINTS - 1) i = OCV_POINTS - 2;
    double fraction = position - i;
    return OCV_TABLE[i] + fraction * (OCV_TABLE[i + 1] - OCV_TABLE[i]);
}

/* One cell's OCV: the table, or the table stretched onto [cell_OCV_min_V, cell_OCV_max_V]. */
static double cell_ocv(const Model *m, double soc) {
    double table = ocv_table(soc);
    double low = OCV_TABLE[0], high = OCV_TABLE[OCV_POINTS - 1];
    if (m->cell_OCV_min_V == low && m->cell_OCV_max_V == high) return table; /* exactly the table */
    return m->cell_OCV_min_V + (table - low) * ((m->cell_OCV_max_V - m->cell_OCV_min_V) / (high - low));
}

void model_set_start_values(Model *m) {
    /* A 5 Ah cylindrical (21700) NMC cell in still air. */
    m->capacity_Ah = 5.0;
    m->R0_ohm = 0.015;
    m->R1_ohm = 0.010;
    m->C1_F = 2000.0;              /* tau1 = 20 s */
    m->R2_ohm = 0.008;
    m->C2_F = 50000.0;             /* tau2 = 400 s */
    m->SOC0 = 1.0;
    m->T0_K = 298.15;
    m->T_ambient_K = 298.15;
    m->heat_capacity_J_per_K = 70.0;
    m->thermal_resistance_K_per_W = 10.0;
    m->internal_step_s = 0.1;
    m->series_cells = 1.0;
    m->cell_OCV_min_V = 2.5;
    m->cell_OCV_max_V = 4.2;
    m->I = 0.0;
}

#define REQUIRE(condition, ...)                                           \
    do {                                                                  \
        if (!(condition)) {                                               \
            instance_log(instance, MODEL_ERROR, "logStatusError", __VA_ARGS__); \
            status = MODEL_ERROR;                                         \
        }                                                                 \
    } while (0)

ModelStatus model_check_parameters(const Model *m, const Instance *instance) {
    ModelStatus status = MODEL_OK;
    REQUIRE(m->capacity_Ah > 0.0, "capacity_Ah must be > 0, got %g", m->capacity_Ah);
    REQUIRE(m->R0_ohm >= 0.0, "R0_ohm must be >= 0, got %g", m->R0_ohm);
    REQUIRE(m->R1_ohm >= 0.0, "R1_ohm must be >= 0 (0 removes the branch), got %g", m->R1_ohm);
    REQUIRE(m->R2_ohm >= 0.0, "R2_ohm must be >= 0 (0 removes the branch), got %g", m->R2_ohm);
    REQUIRE(m->R1_ohm == 0.0 || m->C1_F > 0.0, "C1_F must be > 0 when R1_ohm > 0, got %g", m->C1_F);
    REQUIRE(m->R2_ohm == 0.0 || m->C2_F > 0.0, "C2_F must be > 0 when R2_ohm > 0, got %g", m->C2_F);
    REQUIRE(m->SOC0 >= 0.0 && m->SOC0 <= 1.0, "SOC0 must be in [0, 1], got %g", m->SOC0);
    REQUIRE(m->T0_K > 0.0, "T0_K must be > 0 K, got %g", m->T0_K);
    REQUIRE(m->T_ambient_K > 0.0, "T_ambient_K must be > 0 K, got %g", m->T_ambient_K);
    REQUIRE(m->heat_capacity_J_per_K > 0.0, "heat_capacity_J_per_K must be > 0, got %g",
            m->heat_capacity_J_per_K);
    REQUIRE(m->thermal_resistance_K_per_W > 0.0, "thermal_resistance_K_per_W must be > 0, got %g",
            m->thermal_resistance_K_per_W);
    REQUIRE(m->internal_step_s > 0.0, "internal_step_s must be > 0, got %g", m->internal_step_s);
    REQUIRE(m->series_cells >= 1.0 && m->series_cells == floor(m->series_cells),
            "series_cells must be a whole number >= 1, got %g", m->series_cells);
    REQUIRE(m->cell_OCV_min_V > 0.0 && m->cell_OCV_min_V < m->cell_OCV_max_V,
            "cell_OCV_min_V must be > 0 and below cell_OCV_max_V, got %g and %g", m->cell_OCV_min_V,
            m->cell_OCV_max_V);
    return status;
}

void model_start(Model *m) {
    m->SOC = m->SOC0;
    m->T = m->T0_K;
    m->v1 = 0.0;
    m->v2 = 0.0;
}

static double branch_heat(double v, double R) { return R > 0.0 ? v * v / R : 0.0; }

void model_calculate_outputs(Model *m) {
    m->OCV = m->series_cells * cell_ocv(m, m->SOC);
    m->V = m->OCV - m->I * m->R0_ohm - m->v1 - m->v2;
    m->P = m->V * m->I;
    m->heat_W = m->I * m->I * m->R0_ohm + branch_heat(m->v1, m->R1_ohm) + branch_heat(m->v2, m->R2_ohm);
}

/* One RC branch over a sub-step h with constant current I: v(s) = a + b exp(-s/tau), a = I R.
 * Returns v(h) and adds the mean of v(s)^2 / R over the sub-step to *heat. */
static double rc_step(double v, double I, double R, double C, double h, double *heat) {
    if (R <= 0.0) return 0.0;
    double tau = R * C;
    double a = I * R;
    double b = v - a;
    double e = exp(-h / tau);
    double mean_square = a * a + 2.0 * a * b * tau * (1.0 - e) / h + b * b * tau * (1.0 - e * e) / (2.0 * h);
    *heat += mean_square / R;
    return a + b * e;
}

#define SOC_TOLERANCE 1e-9 /* round-off of repeated sub-steps, not physics */

ModelStatus model_do_step(Model *m, const Instance *instance, double time, double step) {
    int substeps = (int)ceil(step / m->internal_step_s - 1e-9);
    if (substeps < 1) substeps = 1;
    double h = step / substeps;
    double I = m->I;
    double dsoc = I * h / (3600.0 * m->capacity_Ah);
    double tau_thermal = m->heat_capacity_J_per_K * m->thermal_resistance_K_per_W;
    double decay_thermal = exp(-h / tau_thermal);

    for (int k = 0; k < substeps; k++) {
        double soc = m->SOC - dsoc;
        if (soc < -SOC_TOLERANCE || soc > 1.0 + SOC_TOLERANCE) {
            instance_log(instance, MODEL_ERROR, "logStatusError",
                         "cell %s at t=%.6g s: SOC would reach %.6g with I=%g A; the model is "
                         "valid for SOC in [0, 1]", soc < 0.0 ? "over-discharged" : "over-charged",
                         time + k * h, soc, I);
            model_calculate_outputs(m);
            return MODEL_ERROR;
        }
        m->SOC = fmin(1.0, fmax(0.0, soc));
        double heat = I * I * m->R0_ohm;
        m->v1 = rc_step(m->v1, I, m->R1_ohm, m->C1_F, h, &heat);
        m->v2 = rc_step(m->v2, I, m->R2_ohm, m->C2_F, h, &heat);
        double T_final = m->T_ambient_K + heat * m->thermal_resistance_K_per_W;
        m->T = T_final + (m->T - T_final) * decay_thermal;
    }
    model_calculate_outputs(m);
    return MODEL_OK;
}
