/*
 * The procedure controller the virtual bench compiles into its co-simulation step loop.
 *
 * It executes a flattened program (procedures/program.py) sample by sample with exactly the
 * rules of the Python reference executor (procedures/interpreter.py, the readable statement of
 * them); tests hold the two to the same samples. Per communication point the master calls
 * fl_ctl_row(controller, row) once, after the FMUs' outputs of that point are in the row and the
 * FMUs have stepped to the next point. It reads the voltage (and temperature) of the point from
 * the row, accounts charge and energy, checks the safety limits and the step's terminations,
 * writes the row's BDF columns, and sets the current (and ambient temperature) for the next
 * point in the FMUs itself (one C call instead of a prepared fmiSetReal per point). A non-zero
 * return ends the block (and the run): the program is complete, a safety limit tripped, an FMU
 * refused an input, or it cannot go on.
 *
 * Every field of Controller is 8 bytes wide, so the Python ctypes mirror has the same layout
 * with no padding; fl_ctl_sizeof lets the loader check it.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define OP_WIDTH 28
#define OP_MODE 0
#define OP_VALUE 1
#define OP_AMBIENT 2
#define OP_PROFILE_START 3
#define OP_PROFILE_COUNT 4
#define OP_LINEAR 5
#define OP_LIMIT_CHARGE 6
#define OP_LIMIT_DISCHARGE 7
#define OP_COUNT 8
#define OP_CYCLE 9
#define OP_STEP_ID 10
#define OP_TERMINATIONS 11
#define OP_FIRST_TERMINATION 12

enum { REST, CC, CV, CP, PROFILE_CURRENT, PROFILE_POWER, PROFILE_VOLTAGE, AMBIENT, EXTERNAL, LOOP_BEGIN, LOOP_END };
enum { UNTIL_TIME = 1, UNTIL_VOLTAGE_ABOVE, UNTIL_VOLTAGE_BELOW, UNTIL_CURRENT_BELOW, UNTIL_CHARGE,
       UNTIL_TEMPERATURE_ABOVE, UNTIL_TEMPERATURE_BELOW };
/* Distinct from the FMI statuses (0-4) the co-simulation loop also sees (procedures/program.py Code). */
enum { CODE_CONTINUE = 0, CODE_COMPLETE = 10, CODE_SAFETY = 11, CODE_EXTERNAL = 12, CODE_INVALID = 13,
       CODE_FMU_ERROR = 14 };
enum { LIMIT_MAX_VOLTAGE, LIMIT_MIN_VOLTAGE, LIMIT_MAX_CHARGE_CURRENT, LIMIT_MAX_DISCHARGE_CURRENT,
       LIMIT_MAX_TEMPERATURE, LIMIT_MIN_TEMPERATURE, LIMIT_COUNT };
/* Columns of the row this controller writes (indices into Controller.out). */
enum { OUT_TEST_TIME, OUT_CURRENT, OUT_STEP_COUNT, OUT_CYCLE_COUNT, OUT_STEP_ID, OUT_CHARGE_AH,
       OUT_DISCHARGE_AH, OUT_CHARGE_WH, OUT_DISCHARGE_WH, OUT_AMBIENT, OUT_RECORD, OUT_VOLTAGE,
       OUT_TEMPERATURE, OUT_COUNT };

#define MAX_DEPTH 16
#define CURRENT_STEP_SHARE 0.02
#define EPSILON 1e-9

/* fmi2SetReal(component, vr[], nvr, value[]) and fmi3SetFloat64(instance, vr[], nvr, value[], nValues) */
typedef int (*Fmi2SetReal)(void *, const unsigned int *, size_t, const double *);
typedef int (*Fmi3SetFloat64)(void *, const unsigned int *, size_t, const double *, size_t);

/* An FMU input the controller sets itself, once the FMUs have stepped to the next point. */
typedef struct {
    void *set;      /* fmi2SetReal or fmi3SetFloat64; NULL: write the next row instead */
    void *instance;
    int64_t vr;
    int64_t fmi3;
} Input;

typedef struct {
    /* the program (arrays owned by the caller) */
    const double *ops;
    int64_t n_ops;
    const double *profile;
    int64_t n_profile;
    /* the row: column indices (-1: absent) */
    int64_t stride; /* doubles per row */
    int64_t col_time, col_voltage, col_temperature, col_current_cmd, col_ambient_cmd;
    int64_t out[OUT_COUNT];
    /* conversions: SI = raw * scale + offset (temperature SI in degC); command raw = SI * gain + bias */
    double voltage_scale, voltage_offset, temperature_scale, temperature_offset;
    double current_gain, current_bias, ambient_gain, ambient_bias;
    double safety[LIMIT_COUNT], delay;
    double period, voltage_delta, current_delta;
    double tick, t0, resistance, rating_scale;
    int64_t allow_external;
    Input current_input, ambient_input;
    /* state */
    int64_t pc, depth, loops[MAX_DEPTH];
    int64_t step_count, cycle_count, step_new, has_previous, finished, has_recorded, opening;
    double error; /* the last voltage error of a regulating step (its oscillation guard) */
    double command, ambient, step_start, step_charge, charge_ah, discharge_ah, charge_wh, discharge_wh;
    double previous_t, previous_i, previous_v;
    double exceeded_since[LIMIT_COUNT];
    double recorded_t, recorded_v, recorded_i;
    /* the trip that ended the run */
    int64_t trip_limit;
    double trip_value, trip_at, trip_held;
    /* a set the FMU refused: its status, and 0 for the current input, 1 for the ambient one */
    int64_t fmu_status, fmu_input;
} Controller;

int64_t fl_ctl_sizeof(void) { return (int64_t)sizeof(Controller); }

static const double *op_at(const Controller *c, int64_t index) { return c->ops + index * OP_WIDTH; }

/* Move pc to the next op that takes time; 0 at the end of the program. */
static int settle(Controller *c) {
    while (c->pc < c->n_ops) {
        const double *op = op_at(c, c->pc);
        int mode = (int)op[OP_MODE];
        if (mode == LOOP_BEGIN) {
            if (c->depth >= MAX_DEPTH) return -1;
            c->loops[c->depth++] = (int64_t)op[OP_COUNT];
            if (op[OP_CYCLE] != 0.0) c->cycle_count++;
            c->pc++;
        } else if (mode == LOOP_END) {
            if (c->depth <= 0) return -1;
            int64_t target = (int64_t)op[OP_VALUE];
            if (--c->loops[c->depth - 1] > 0) {
                c->pc = target + 1;
                if (op_at(c, target)[OP_CYCLE] != 0.0) c->cycle_count++;
            } else {
                c->depth--;
                c->pc++;
            }
        } else if (mode == AMBIENT && op[OP_TERMINATIONS] == 0.0) {
            c->ambient = op[OP_AMBIENT];
            c->pc++;
        } else {
            if (mode == AMBIENT) c->ambient = op[OP_AMBIENT];
            return 1;
        }
    }
    return 0;
}

static int activate(Controller *c, double t_start) {
    int settled = settle(c);
    if (settled <= 0) return settled;
    c->step_count++;
    c->step_start = t_start;
    c->step_new = 1;
    c->error = NAN;
    return 1;
}

static double profile_value(const Controller *c, const double *op, double step_time) {
    int64_t start = (int64_t)op[OP_PROFILE_START], count = (int64_t)op[OP_PROFILE_COUNT];
    const double *table = c->profile + 2 * start;
    if (step_time <= table[0]) return table[1];
    if (step_time >= table[2 * (count - 1)]) return table[2 * (count - 1) + 1];
    int64_t lo = 0, hi = count - 1; /* table[lo].t <= step_time < table[hi].t */
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) / 2;
        if (table[2 * mid] <= step_time) lo = mid; else hi = mid;
    }
    if (op[OP_LINEAR] == 0.0) return table[2 * lo + 1];
    double t0 = table[2 * lo], t1 = table[2 * hi];
    return table[2 * lo + 1] + (table[2 * hi + 1] - table[2 * lo + 1]) * (step_time - t0) / (t1 - t0);
}

static double clamp(const double *op, double current) {
    double charge = op[OP_LIMIT_CHARGE], discharge = op[OP_LIMIT_DISCHARGE];
    return fmin(charge, fmax(-discharge, current));
}

/* The current op commands for the interval starting at t_next. */
static double command(Controller *c, const double *op, double t_next, double voltage) {
    int mode = (int)op[OP_MODE];
    if (mode == CC) return op[OP_VALUE];
    if (mode == REST || mode == AMBIENT || mode == EXTERNAL) return 0.0;
    double step_time = t_next - c->step_start;
    if (mode == PROFILE_CURRENT) return profile_value(c, op, step_time);
    if (mode == CP || mode == PROFILE_POWER) {
        double power = mode == CP ? op[OP_VALUE] : profile_value(c, op, step_time);
        return voltage > 0.0 ? clamp(op, power / voltage) : 0.0;
    }
    double target = mode == CV ? op[OP_VALUE] : profile_value(c, op, step_time);
    double error = target - voltage;
    if (error * c->error < 0.0 && fabs(error) > fabs(c->error)) c->resistance *= 2.0; /* it oscillates */
    c->error = error;
    return clamp(op, c->command + error / c->resistance);
}

static int set_input(const Input *input, double value) {
    unsigned int vr = (unsigned int)input->vr;
    if (input->fmi3) return ((Fmi3SetFloat64)input->set)(input->instance, &vr, 1, &value, 1);
    return ((Fmi2SetReal)input->set)(input->instance, &vr, 1, &value);
}

/* The next point's current (and ambient): set in the FMUs, which have already stepped to it (the
 * co-simulation), or written into the next row for a caller that applies them itself (tests). */
static int write_commands(Controller *c, double *row) {
    double current = c->command * c->current_gain + c->current_bias;
    int status = 0;
    if (c->current_input.set) status = set_input(&c->current_input, current);
    else if (c->col_current_cmd >= 0) row[c->stride + c->col_current_cmd] = current;
    if (status > 1) { c->fmu_status = status; c->fmu_input = 0; return CODE_FMU_ERROR; }
    if (isnan(c->ambient)) return CODE_CONTINUE;
    double ambient = c->ambient * c->ambient_gain + c->ambient_bias;
    if (c->ambient_input.set) status = set_input(&c->ambient_input, ambient);
    else if (c->col_ambient_cmd >= 0) row[c->stride + c->col_ambient_cmd] = ambient;
    if (status > 1) { c->fmu_status = status; c->fmu_input = 1; return CODE_FMU_ERROR; }
    return CODE_CONTINUE;
}

/* Start at t0. Every run opens with one sample at open circuit (the UUT's voltage before the
 * test, and the reference from which the first current step measures its resistance): the
 * command for [t0, t0 + tick) is zero, and the first step starts at t0 + tick. */
int fl_ctl_begin(Controller *c) {
    c->pc = 0;
    c->depth = 0;
    c->step_count = 0;
    c->cycle_count = 0;
    c->has_previous = 0;
    c->has_recorded = 0;
    c->finished = 0;
    c->opening = 1;
    c->step_new = 0;
    c->error = NAN;
    c->command = 0.0;
    c->charge_ah = c->discharge_ah = c->charge_wh = c->discharge_wh = 0.0;
    c->step_charge = 0.0;
    c->trip_limit = -1;
    for (int i = 0; i < LIMIT_COUNT; i++) c->exceeded_since[i] = NAN;
    return CODE_CONTINUE;
}

static int safety(Controller *c, double t, double voltage, double current, double temperature) {
    double seen[LIMIT_COUNT] = {voltage, voltage, current, -current, temperature, temperature};
    for (int limit = 0; limit < LIMIT_COUNT; limit++) {
        double value = seen[limit], bound = c->safety[limit];
        int above = limit == LIMIT_MAX_VOLTAGE || limit == LIMIT_MAX_CHARGE_CURRENT ||
                    limit == LIMIT_MAX_DISCHARGE_CURRENT || limit == LIMIT_MAX_TEMPERATURE;
        int exceeded = above ? value > bound : value < bound;
        if (!exceeded) { c->exceeded_since[limit] = NAN; continue; }
        if (isnan(c->exceeded_since[limit])) c->exceeded_since[limit] = t;
        double held = t - c->exceeded_since[limit];
        if (held >= c->delay - EPSILON) {
            c->trip_limit = limit;
            c->trip_value = (limit == LIMIT_MAX_CHARGE_CURRENT || limit == LIMIT_MAX_DISCHARGE_CURRENT) ? fabs(value) : value;
            c->trip_at = t;
            c->trip_held = held;
            return 1;
        }
    }
    return 0;
}

static int terminated(const Controller *c, const double *op, double t, double voltage, double current,
                      double temperature, int first) {
    double step_time_next = t + c->tick - c->step_start;
    double charge_next = c->step_charge + fabs(current) * c->tick / 3600.0;
    int64_t n = (int64_t)op[OP_TERMINATIONS];
    for (int64_t j = 0; j < n; j++) {
        int kind = (int)op[OP_FIRST_TERMINATION + 2 * j];
        double value = op[OP_FIRST_TERMINATION + 2 * j + 1];
        int hit;
        switch (kind) {
            case UNTIL_TIME: hit = step_time_next >= value - EPSILON * fmax(1.0, value); break;
            case UNTIL_CHARGE: hit = charge_next >= value - EPSILON * fmax(1.0, value); break;
            case UNTIL_VOLTAGE_ABOVE: hit = voltage >= value; break;
            case UNTIL_VOLTAGE_BELOW: hit = voltage <= value; break;
            case UNTIL_CURRENT_BELOW: hit = !first && fabs(current) <= value; break;
            case UNTIL_TEMPERATURE_ABOVE: hit = temperature >= value; break;
            default: hit = temperature <= value; break;
        }
        if (hit) return 1;
    }
    return 0;
}

static int record(Controller *c, double t, double voltage, double current, int boundary) {
    int keep = boundary || !c->has_recorded || c->finished ||
               t - c->recorded_t >= c->period - EPSILON * fmax(1.0, c->period) ||
               fabs(voltage - c->recorded_v) >= c->voltage_delta || fabs(current - c->recorded_i) >= c->current_delta;
    if (keep) {
        c->has_recorded = 1;
        c->recorded_t = t;
        c->recorded_v = voltage;
        c->recorded_i = current;
    }
    return keep;
}

int fl_ctl_row(Controller *c, double *row) {
    if (c->finished) return (int)c->finished;
    double t = row[c->col_time];
    double voltage = row[c->col_voltage] * c->voltage_scale + c->voltage_offset;
    double temperature = c->col_temperature >= 0 ? row[c->col_temperature] * c->temperature_scale + c->temperature_offset : NAN;
    double current = c->command;
    if (c->has_previous) {
        double charge = c->previous_i * (t - c->previous_t) / 3600.0;
        double energy = charge * c->previous_v;
        if (charge > 0.0) { c->charge_ah += charge; c->charge_wh += energy; }
        else { c->discharge_ah -= charge; c->discharge_wh -= energy; }
        c->step_charge += fabs(charge);
        double jump = fabs(current - c->previous_i);
        if (jump >= CURRENT_STEP_SHARE * c->rating_scale && jump > 0.0) {
            double measured = (voltage - c->previous_v) / (current - c->previous_i);
            if (measured >= 1e-6 && measured <= 1e3) c->resistance = measured;
        }
    }
    int first = (int)c->step_new;
    if (first) { c->step_charge = 0.0; c->step_new = 0; }
    int opening = (int)c->opening;
    const double *op = opening ? 0 : op_at(c, c->pc);
    c->has_previous = 1;
    c->previous_t = t;
    c->previous_i = current;
    c->previous_v = voltage;
    int code = CODE_CONTINUE;
    if (isnan(voltage)) code = CODE_INVALID;
    else if (safety(c, t, voltage, current, temperature)) code = CODE_SAFETY;
    else if (op && (int)op[OP_MODE] == EXTERNAL && !c->allow_external) code = CODE_EXTERNAL;
    int ended = code != CODE_CONTINUE;
    /* the row's columns belong to the step that commanded its current, even if it ends here */
    const int64_t *out = c->out;
    if (out[OUT_STEP_COUNT] >= 0) row[out[OUT_STEP_COUNT]] = (double)c->step_count;
    if (out[OUT_CYCLE_COUNT] >= 0) row[out[OUT_CYCLE_COUNT]] = (double)c->cycle_count;
    if (out[OUT_STEP_ID] >= 0) row[out[OUT_STEP_ID]] = op ? op[OP_STEP_ID] : -1.0;
    if (out[OUT_AMBIENT] >= 0) row[out[OUT_AMBIENT]] = c->ambient;
    if (opening && !ended) {
        c->opening = 0;
        ended = 1;
        int active = activate(c, t + c->tick);
        if (active < 0) code = CODE_INVALID;
        else if (active == 0) code = CODE_COMPLETE;
    } else if (op && !ended && terminated(c, op, t, voltage, current, temperature, first)) {
        ended = 1;
        c->pc++;
        int active = activate(c, t + c->tick);
        if (active < 0) code = CODE_INVALID;
        else if (active == 0) code = CODE_COMPLETE;
    }
    if (code == CODE_CONTINUE) {
        c->command = command(c, op_at(c, c->pc), t + c->tick, voltage);
    } else {
        c->finished = code;
        c->command = 0.0;
    }
    int keep = record(c, t, voltage, current, first || ended);
    if (out[OUT_TEST_TIME] >= 0) row[out[OUT_TEST_TIME]] = t - c->t0;
    if (out[OUT_CURRENT] >= 0) row[out[OUT_CURRENT]] = current;
    if (out[OUT_CHARGE_AH] >= 0) row[out[OUT_CHARGE_AH]] = c->charge_ah;
    if (out[OUT_DISCHARGE_AH] >= 0) row[out[OUT_DISCHARGE_AH]] = c->discharge_ah;
    if (out[OUT_CHARGE_WH] >= 0) row[out[OUT_CHARGE_WH]] = c->charge_wh;
    if (out[OUT_DISCHARGE_WH] >= 0) row[out[OUT_DISCHARGE_WH]] = c->discharge_wh;
    if (out[OUT_RECORD] >= 0) row[out[OUT_RECORD]] = keep ? 1.0 : 0.0;
    if (out[OUT_VOLTAGE] >= 0) row[out[OUT_VOLTAGE]] = voltage;
    if (out[OUT_TEMPERATURE] >= 0) row[out[OUT_TEMPERATURE]] = temperature;
    if (code == CODE_CONTINUE) {
        code = write_commands(c, row);
        if (code != CODE_CONTINUE) c->finished = code;
    }
    return code;
}

/* A Python extension module's name, so setuptools can build this file as one; never imported. */
void *PyInit__controller(void) { return 0; }
