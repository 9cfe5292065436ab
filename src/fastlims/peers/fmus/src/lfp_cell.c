/*
 * LFP/graphite cell as a single FMU, in the units and sign a partner's model might use: the
 * second reference model, different from battery_cell in every name, unit and convention that
 * FastLIMS's port-role mapping must handle (currents in mA, positive = CHARGE; voltages in mV; SOC
 * in %; temperatures in degC; the ambient temperature an input, not a parameter).
 *
 * An OCV(SOC) source, a series resistance R_s and one polarisation branch (R_p || C_p, with
 * tau_p = R_p C_p; R_p = 0 removes it), with a lumped thermal model. With I = i_mA / 1000 (A,
 * positive = charge), SOC as a fraction and Q = capacity_mAh / 1000 (Ah):
 *
 *   dSOC/dt   = I / (3600 Q)
 *   dv_p/dt   = (I R_p - v_p) / tau_p
 *   U         = OCV(SOC) + I R_s + v_p                  (charging raises the terminal voltage)
 *   heat      = I^2 R_s + v_p^2 / R_p                  (Joule heat, W)
 *   C_th dT/dt = heat - (T - T_amb) / R_th             (T, T_amb in degC)
 *
 * The inputs are held constant over a communication step. Each step is split into sub-steps of
 * at most substep_ms; within a sub-step SOC and v_p are updated exactly and the temperature
 * exactly for the sub-step's mean heat, as in battery_cell.c: SOC and the electrical outputs are
 * exact for any step size, the temperature is exact when the heat is constant (R_p = 0).
 *
 * A step that would take SOC below 0 % (over-discharge) or above 100 % (over-charge) stops at the
 * last valid sub-step and returns an error, so the master can report where the cell left the range
 * in which the model means anything.
 */
#include <math.h>
#include <stddef.h>

#include "model.h"

struct Model {
    /* parameters */
    double capacity_mAh;
    double r_series_mOhm;
    double r_pol_mOhm;
    double tau_pol_s;
    double soc_init_pct;
    double t_cell_init_degC;
    double c_th_J_per_K;
    double r_th_K_per_W;
    double substep_ms;
    /* inputs */
    double i_mA;
    double t_amb_degC;
    /* outputs (soc_pct and t_cell_degC are also states) */
    double u_mV;
    double soc_pct;
    double t_cell_degC;
    double ocv_mV;
    double heat_mW;
    /* state not exposed: the polarisation voltage (V) */
    double v_pol;
};

const char MODEL_NAME[] = "lfp_cell";
const size_t MODEL_SIZE = sizeof(Model);

#define FLOAT64(vr, field, causality, variability) \
    { vr, #field, KIND_FLOAT64, causality, variability, offsetof(Model, field) }

/* Value references in ranges of their own (parameters 101.., inputs 201.., outputs 301..): a
 * master must take them from the model description, never assume battery_cell's. */
const VariableInfo MODEL_VARIABLES[] = {
    FLOAT64(101, capacity_mAh, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(102, r_series_mOhm, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(103, r_pol_mOhm, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(104, tau_pol_s, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(105, soc_init_pct, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(106, t_cell_init_degC, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(107, c_th_J_per_K, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(108, r_th_K_per_W, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(109, substep_ms, CAUSALITY_PARAMETER, VARIABILITY_FIXED),
    FLOAT64(201, i_mA, CAUSALITY_INPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(202, t_amb_degC, CAUSALITY_INPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(301, u_mV, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(302, soc_pct, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(303, t_cell_degC, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(304, ocv_mV, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
    FLOAT64(305, heat_mW, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS),
};
const size_t MODEL_VARIABLE_COUNT = sizeof MODEL_VARIABLES / sizeof MODEL_VARIABLES[0];

/* Open-circuit voltage of an LFP/graphite cell at SOC = 0, 5, ..., 100 % (V); linear in between.
 * Steep knees at both ends and the long flat plateau (3.20 V at 15 % to 3.35 V at 90 %) with the
 * small step of the graphite staging near 65 %. 0 % is 2.0 V, so a cell rated 2.0-3.65 V reaches
 * its cut-off voltage before the model leaves its valid range. */
#define OCV_POINTS 21
static const double OCV_TABLE_V[OCV_POINTS] = {
    2.000, 2.900, 3.150, 3.200, 3.220, 3.240, 3.255, 3.265, 3.275, 3.283, 3.290,
    3.296, 3.303, 3.310, 3.325, 3.330, 3.335, 3.340, 3.350, 3.400, 3.600,
};

static double ocv_V(double soc_fraction) {
    if (soc_fraction <= 0.0) return OCV_TABLE_V[0];
    if (soc_fraction >= 1.0) return OCV_TABLE_V[OCV_POINTS - 1];
    double position = soc_fraction * (OCV_POINTS - 1);
    int i = (int)position;
    if (i >= OCV_POINTS - 1) i = OCV_POINTS - 2;
    double fraction = position - i;
    return OCV_TABLE_V[i] + fraction * (OCV_TABLE_V[i + 1] - OCV_TABLE_V[i]);
}

void model_set_start_values(Model *m) {
    /* A 2.5 Ah cylindrical (26650-class) LFP cell in a climate chamber. */
    m->capacity_mAh = 2500.0;
    m->r_series_mOhm = 20.0;
    m->r_pol_mOhm = 12.0;
    m->tau_pol_s = 60.0;
    m->soc_init_pct = 100.0;
    m->t_cell_init_degC = 25.0;
    m->c_th_J_per_K = 80.0;
    m->r_th_K_per_W = 8.0;
    m->substep_ms = 100.0;
    m->i_mA = 0.0;
    m->t_amb_degC = 25.0;
}

#define ABSOLUTE_ZERO_DEGC (-273.15)

#define REQUIRE(condition, ...)                                           \
    do {                                                                  \
        if (!(condition)) {                                               \
            instance_log(instance, MODEL_ERROR, "logStatusError", __VA_ARGS__); \
            status = MODEL_ERROR;                                         \
        }                                                                 \
    } while (0)

ModelStatus model_check_parameters(const Model *m, const Instance *instance) {
    ModelStatus status = MODEL_OK;
    REQUIRE(m->capacity_mAh > 0.0, "capacity_mAh must be > 0, got %g", m->capacity_mAh);
    REQUIRE(m->r_series_mOhm >= 0.0, "r_series_mOhm must be >= 0, got %g", m->r_series_mOhm);
    REQUIRE(m->r_pol_mOhm >= 0.0, "r_pol_mOhm must be >= 0 (0 removes the branch), got %g", m->r_pol_mOhm);
    REQUIRE(m->r_pol_mOhm == 0.0 || m->tau_pol_s > 0.0, "tau_pol_s must be > 0 when r_pol_mOhm > 0, got %g",
            m->tau_pol_s);
    REQUIRE(m->soc_init_pct >= 0.0 && m->soc_init_pct <= 100.0, "soc_init_pct must be in [0, 100] %%, got %g",
            m->soc_init_pct);
    REQUIRE(m->t_cell_init_degC > ABSOLUTE_ZERO_DEGC, "t_cell_init_degC must be above -273.15 degC, got %g",
            m->t_cell_init_degC);
    REQUIRE(m->t_amb_degC > ABSOLUTE_ZERO_DEGC, "t_amb_degC must be above -273.15 degC, got %g", m->t_amb_degC);
    REQUIRE(m->c_th_J_per_K > 0.0, "c_th_J_per_K must be > 0, got %g", m->c_th_J_per_K);
    REQUIRE(m->r_th_K_per_W > 0.0, "r_th_K_per_W must be > 0, got %g", m->r_th_K_per_W);
    REQUIRE(m->substep_ms > 0.0, "substep_ms must be > 0, got %g", m->substep_ms);
    return status;
}

void model_start(Model *m) {
    m->soc_pct = m->soc_init_pct;
    m->t_cell_degC = m->t_cell_init_degC;
    m->v_pol = 0.0;
}

void model_calculate_outputs(Model *m) {
    double current_A = m->i_mA / 1000.0;
    double r_series = m->r_series_mOhm / 1000.0, r_pol = m->r_pol_mOhm / 1000.0;
    double ocv = ocv_V(m->soc_pct / 100.0);
    m->ocv_mV = 1000.0 * ocv;
    m->u_mV = 1000.0 * (ocv + current_A * r_series + m->v_pol);
    double heat_W = current_A * current_A * r_series + (r_pol > 0.0 ? m->v_pol * m->v_pol / r_pol : 0.0);
    m->heat_mW = 1000.0 * heat_W;
}

/* The polarisation branch over a sub-step h with constant current I (A): v(s) = a + b exp(-s/tau),
 * a = I R. Returns v(h) and adds the mean of v(s)^2 / R over the sub-step to *heat (W). */
static double pol_step(double v, double I, double R, double tau, double h, double *heat) {
    if (R <= 0.0) return 0.0;
    double a = I * R;
    double b = v - a;
    double e = exp(-h / tau);
    double mean_square = a * a + 2.0 * a * b * tau * (1.0 - e) / h + b * b * tau * (1.0 - e * e) / (2.0 * h);
    *heat += mean_square / R;
    return a + b * e;
}

#define SOC_TOLERANCE_PCT 1e-7 /* round-off of repeated sub-steps, not physics */

ModelStatus model_do_step(Model *m, const Instance *instance, double time, double step) {
    if (!(m->t_amb_degC > ABSOLUTE_ZERO_DEGC)) {
        instance_log(instance, MODEL_ERROR, "logStatusError",
                     "t_amb_degC must be above -273.15 degC, got %g (at t=%.6g s)", m->t_amb_degC, time);
        return MODEL_ERROR;
    }
    double h_max = m->substep_ms / 1000.0;
    int substeps = (int)ceil(step / h_max - 1e-9);
    if (substeps < 1) substeps = 1;
    double h = step / substeps;
    double current_A = m->i_mA / 1000.0;
    double r_series = m->r_series_mOhm / 1000.0, r_pol = m->r_pol_mOhm / 1000.0;
    double dsoc_pct = 100.0 * current_A * h / (3.6 * m->capacity_mAh); /* Q in As = 3.6 capacity_mAh */
    double decay_thermal = exp(-h / (m->c_th_J_per_K * m->r_th_K_per_W));

    for (int k = 0; k < substeps; k++) {
        double soc = m->soc_pct + dsoc_pct;
        if (soc < -SOC_TOLERANCE_PCT || soc > 100.0 + SOC_TOLERANCE_PCT) {
            instance_log(instance, MODEL_ERROR, "logStatusError",
                         "cell %s at t=%.6g s: SOC would reach %.6g %% with i_mA=%g mA (positive = charge); "
                         "the model is valid for SOC in [0, 100] %%",
                         soc < 0.0 ? "over-discharged" : "over-charged", time + k * h, soc, m->i_mA);
            model_calculate_outputs(m);
            return MODEL_ERROR;
        }
        m->soc_pct = fmin(100.0, fmax(0.0, soc));
        double heat_W = current_A * current_A * r_series;
        m->v_pol = pol_step(m->v_pol, current_A, r_pol, m->tau_pol_s, h, &heat_W);
        double t_final = m->t_amb_degC + heat_W * m->r_th_K_per_W;
        m->t_cell_degC = t_final + (m->t_cell_degC - t_final) * decay_thermal;
    }
    model_calculate_outputs(m);
    return MODEL_OK;
}
