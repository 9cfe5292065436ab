#include "instance.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(FAULT_CRASH) + defined(FAULT_ERROR) + defined(FAULT_NAN) > 1
#error "at most one of FAULT_CRASH, FAULT_ERROR, FAULT_NAN"
#endif
#if defined(FAULT_CRASH) || defined(FAULT_ERROR) || defined(FAULT_NAN)
#define HAS_FAULT 1
#else
#define HAS_FAULT 0
#endif

#define FAULT_TIME_START 10.0

static void instance_vlog(const Instance *instance, ModelStatus status, const char *category, const char *format,
                          va_list args) {
    if (instance == NULL || instance->logger == NULL) return;
    if (status == MODEL_OK && !instance->logging_on) return;
    char message[1024];
    /* Every message starts with the instance name: FMI 3 log callbacks are not given it. */
    int prefix = snprintf(message, sizeof message, "%s: ", instance->name);
    if (prefix < 0 || (size_t)prefix >= sizeof message) prefix = 0;
    vsnprintf(message + prefix, sizeof message - (size_t)prefix, format, args);
    instance->logger(instance, status, category, message);
}

void instance_log(const Instance *instance, ModelStatus status, const char *category, const char *format, ...) {
    va_list args;
    va_start(args, format);
    instance_vlog(instance, status, category, format, args);
    va_end(args);
}

/* Log an error and return MODEL_ERROR. */
__attribute__((format(printf, 2, 3))) static ModelStatus fail(const Instance *instance, const char *format, ...) {
    va_list args;
    va_start(args, format);
    instance_vlog(instance, MODEL_ERROR, "logStatusError", format, args);
    va_end(args);
    return MODEL_ERROR;
}

const char *phase_name(Phase phase) {
    switch (phase) {
        case PHASE_INSTANTIATED: return "instantiated";
        case PHASE_INITIALIZATION: return "initialization mode";
        case PHASE_STEP: return "step mode";
        case PHASE_TERMINATED: return "terminated";
        case PHASE_FAILED: return "failed (after an error)";
    }
    return "unknown";
}

static const VariableInfo *find_variable(unsigned int vr);

/* The model's own start values, then the ones chosen at build time (instance.h). */
static void set_start_values(Model *model) {
    model_set_start_values(model);
    for (size_t i = 0; i < FMU_START_VALUE_COUNT; i++) {
        const VariableInfo *variable = find_variable(FMU_START_VALUES[i].vr);
        if (variable == NULL) continue; /* the builder only writes the model's own variables */
        char *field = (char *)model + variable->offset;
        if (variable->kind == KIND_FLOAT64)
            *(double *)field = FMU_START_VALUES[i].value;
        else
            *(int *)field = (int)FMU_START_VALUES[i].value;
    }
}

Instance *instance_new(const char *name, InstanceLogger logger, void *importer, int logging_on) {
    Instance *instance = calloc(1, sizeof(Instance));
    if (instance == NULL) return NULL;
    const char *given = name != NULL ? name : MODEL_NAME;
    instance->name = malloc(strlen(given) + 1);
    instance->model = calloc(1, MODEL_SIZE);
    if (instance->name == NULL || instance->model == NULL) {
        instance_free(instance);
        return NULL;
    }
    strcpy(instance->name, given);
    instance->logger = logger;
    instance->importer = importer;
    instance->logging_on = logging_on;
    instance->phase = PHASE_INSTANTIATED;
    instance->fault_time = FAULT_TIME_START;
    set_start_values(instance->model);
    model_start(instance->model);
    return instance;
}

void instance_free(Instance *instance) {
    if (instance == NULL) return;
    free(instance->model);
    free(instance->name);
    free(instance);
}

ModelStatus instance_check_token(const Instance *instance, const char *token) {
    if (token != NULL && strcmp(token, FMU_INSTANTIATION_TOKEN) == 0) return MODEL_OK;
    return fail(instance,
                "the instantiation token (GUID) '%s' does not match the compiled '%s'; "
                "the modelDescription.xml and the binary come from different builds",
                token != NULL ? token : "(null)", FMU_INSTANTIATION_TOKEN);
}

ModelStatus instance_enter_initialization(Instance *instance, double start_time) {
    if (instance->phase != PHASE_INSTANTIATED)
        return fail(instance, "cannot enter initialization mode when %s", phase_name(instance->phase));
    if (!isfinite(start_time))
        return fail(instance, "the start time must be finite");
    instance->phase = PHASE_INITIALIZATION;
    instance->start_time = start_time;
    instance->time = start_time;
    return MODEL_OK;
}

ModelStatus instance_exit_initialization(Instance *instance) {
    if (instance->phase != PHASE_INITIALIZATION)
        return fail(instance, "cannot exit initialization mode when %s", phase_name(instance->phase));
    ModelStatus status = model_check_parameters(instance->model, instance);
    if (status >= MODEL_ERROR) return status;
    model_start(instance->model);
    instance->phase = PHASE_STEP;
    instance_log(instance, MODEL_OK, "logEvents", "initialized at t=%g s", instance->time);
    return status;
}

ModelStatus instance_terminate(Instance *instance) {
    if (instance->phase == PHASE_TERMINATED)
        return fail(instance, "already terminated");
    instance->phase = PHASE_TERMINATED;
    return MODEL_OK;
}

ModelStatus instance_reset(Instance *instance) {
    memset(instance->model, 0, MODEL_SIZE);
    set_start_values(instance->model);
    model_start(instance->model);
    instance->phase = PHASE_INSTANTIATED;
    instance->time = 0.0;
    instance->start_time = 0.0;
    instance->fault_time = FAULT_TIME_START;
    return MODEL_OK;
}

static const VariableInfo *find_variable(unsigned int vr) {
    for (size_t i = 0; i < MODEL_VARIABLE_COUNT; i++) {
        if (MODEL_VARIABLES[i].vr == vr) return &MODEL_VARIABLES[i];
    }
    return NULL;
}

static void refresh(Instance *instance) {
    /* Before the end of initialization the states follow the parameters set so far. */
    if (instance->phase == PHASE_INSTANTIATED || instance->phase == PHASE_INITIALIZATION)
        model_start(instance->model);
    model_calculate_outputs(instance->model);
}

static ModelStatus check_settable(const Instance *instance, const VariableInfo *variable) {
    Phase phase = instance->phase;
    if (variable->causality == CAUSALITY_OUTPUT)
        return fail(instance, "'%s' is an output and cannot be set", variable->name);
    if (phase == PHASE_TERMINATED || phase == PHASE_FAILED)
        return fail(instance, "cannot set '%s' when %s", variable->name, phase_name(phase));
    if (variable->variability == VARIABILITY_FIXED && phase == PHASE_STEP)
        return fail(instance, "'%s' is a fixed parameter; set it before initialization ends", variable->name);
    return MODEL_OK;
}

ModelStatus instance_get_float64(Instance *instance, unsigned int vr, double *value) {
    if (vr == VR_TIME) {
        *value = instance->time;
        return MODEL_OK;
    }
#if HAS_FAULT
    if (vr == VR_FAULT_TIME) {
        *value = instance->fault_time;
        return MODEL_OK;
    }
#endif
    const VariableInfo *variable = find_variable(vr);
    if (variable == NULL || variable->kind != KIND_FLOAT64)
        return fail(instance, "no Float64 variable has value reference %u", vr);
    refresh(instance);
    *value = *(const double *)((const char *)instance->model + variable->offset);
#if defined(FAULT_NAN)
    if (variable->causality == CAUSALITY_OUTPUT && instance->time > instance->fault_time) *value = NAN;
#endif
    return MODEL_OK;
}

ModelStatus instance_set_float64(Instance *instance, unsigned int vr, double value) {
#if HAS_FAULT
    if (vr == VR_FAULT_TIME) {
        if (instance->phase != PHASE_INSTANTIATED && instance->phase != PHASE_INITIALIZATION)
            return fail(instance, "'fault_time_s' is a fixed parameter; set it before initialization ends");
        instance->fault_time = value;
        return MODEL_OK;
    }
#endif
    const VariableInfo *variable = find_variable(vr);
    if (variable == NULL || variable->kind != KIND_FLOAT64)
        return fail(instance, "no Float64 variable has value reference %u", vr);
    ModelStatus status = check_settable(instance, variable);
    if (status != MODEL_OK) return status;
    if (!isfinite(value))
        return fail(instance, "'%s' must be finite, got %g", variable->name, value);
    double *field = (double *)((char *)instance->model + variable->offset);
    double previous = *field;
    *field = value;
    if (instance->phase == PHASE_STEP && variable->causality == CAUSALITY_PARAMETER) {
        /* A tunable parameter changed between steps: refuse a meaningless value right away. */
        status = model_check_parameters(instance->model, instance);
        if (status >= MODEL_ERROR) *field = previous;
    }
    return status;
}

ModelStatus instance_get_enum(Instance *instance, unsigned int vr, long long *value) {
    const VariableInfo *variable = find_variable(vr);
    if (variable == NULL || variable->kind != KIND_ENUM)
        return fail(instance, "no Enumeration variable has value reference %u", vr);
    refresh(instance);
    *value = *(const int *)((const char *)instance->model + variable->offset);
    return MODEL_OK;
}

ModelStatus instance_set_enum(Instance *instance, unsigned int vr, long long value) {
    const VariableInfo *variable = find_variable(vr);
    if (variable == NULL || variable->kind != KIND_ENUM)
        return fail(instance, "no Enumeration variable has value reference %u", vr);
    ModelStatus status = check_settable(instance, variable);
    if (status != MODEL_OK) return status;
    *(int *)((char *)instance->model + variable->offset) = (int)value;
    return MODEL_OK;
}

#if defined(FAULT_CRASH)
static void crash_now(void) {
    /* A real invalid write (the address is read through a volatile, so the compiler cannot turn
     * it into a trap instruction): the process dies with SIGSEGV like a buggy FMU would. */
    volatile uintptr_t address = 0;
    *(volatile int *)address = 42;
}
#endif

ModelStatus instance_do_step(Instance *instance, double time, double step) {
    if (instance->phase != PHASE_STEP)
        return fail(instance, "doStep is not allowed when %s", phase_name(instance->phase));
    if (!(step > 0.0) || !isfinite(step))
        return fail(instance, "the communication step size must be positive and finite, got %g", step);
    /* The importer's clock and ours must agree: a mismatch means a master bug or a lost step. */
    if (fabs(time - instance->time) > 1e-9 * fmax(1.0, fabs(time)))
        return fail(instance, "doStep from t=%.17g s but the FMU is at t=%.17g s", time, instance->time);
#if defined(FAULT_CRASH)
    if (time + step > instance->fault_time) crash_now();
#elif defined(FAULT_ERROR)
    if (time + step > instance->fault_time) {
        instance->phase = PHASE_FAILED;
        return fail(instance, "deliberate error (error variant) in the step from t=%g s to t=%g s, "
                    "which passes fault_time_s=%g s", time, time + step, instance->fault_time);
    }
#endif
    ModelStatus status = model_do_step(instance->model, instance, time, step);
    if (status >= MODEL_ERROR) {
        instance->phase = PHASE_FAILED;
        return status;
    }
    instance->time = time + step;
    return status;
}

/* ---- FMU state ---- */

#define STATE_MAGIC 0x464C4D53u /* "FLMS" */

typedef struct {
    uint32_t magic;
    uint32_t model_size;
    Phase phase;
    double start_time;
    double time;
    double fault_time;
} StateHeader;

static size_t state_size(void) { return sizeof(StateHeader) + MODEL_SIZE; }

ModelStatus instance_get_state(Instance *instance, void **state) {
    if (*state == NULL) {
        *state = malloc(state_size());
        if (*state == NULL) return fail(instance, "out of memory");
    }
    StateHeader header = {STATE_MAGIC, (uint32_t)MODEL_SIZE, instance->phase, instance->start_time,
                          instance->time, instance->fault_time};
    memcpy(*state, &header, sizeof header);
    memcpy((char *)*state + sizeof header, instance->model, MODEL_SIZE);
    return MODEL_OK;
}

static ModelStatus check_state(const Instance *instance, const void *state) {
    StateHeader header;
    if (state == NULL) return fail(instance, "no FMU state given");
    memcpy(&header, state, sizeof header);
    if (header.magic != STATE_MAGIC || header.model_size != MODEL_SIZE)
        return fail(instance, "the FMU state does not come from this model");
    return MODEL_OK;
}

ModelStatus instance_set_state(Instance *instance, const void *state) {
    if (check_state(instance, state) != MODEL_OK) return MODEL_ERROR;
    StateHeader header;
    memcpy(&header, state, sizeof header);
    instance->phase = header.phase;
    instance->start_time = header.start_time;
    instance->time = header.time;
    instance->fault_time = header.fault_time;
    memcpy(instance->model, (const char *)state + sizeof header, MODEL_SIZE);
    return MODEL_OK;
}

void instance_free_state(void *state) { free(state); }

size_t instance_serialized_size(void) { return state_size(); }

ModelStatus instance_serialize(Instance *instance, const void *state, unsigned char *buffer, size_t size) {
    if (check_state(instance, state) != MODEL_OK) return MODEL_ERROR;
    if (size < state_size())
        return fail(instance, "the buffer for the serialized FMU state is too small");
    memcpy(buffer, state, state_size());
    return MODEL_OK;
}

ModelStatus instance_deserialize(Instance *instance, const unsigned char *buffer, size_t size, void **state) {
    if (size != state_size() || check_state(instance, buffer) != MODEL_OK)
        return fail(instance, "the serialized FMU state does not come from this model");
    if (*state == NULL) {
        *state = malloc(state_size());
        if (*state == NULL) return fail(instance, "out of memory");
    }
    memcpy(*state, buffer, state_size());
    return MODEL_OK;
}
