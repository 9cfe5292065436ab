/*
 * FMI-independent instance logic shared by fmi2_adapter.c and fmi3_adapter.c: the mode an
 * instance is in, which variable may be set when, stepping, FMU state snapshots and the
 * deliberate faults of the *_crash, *_error and *_nan variants.
 */
#ifndef FASTLIMS_INSTANCE_H
#define FASTLIMS_INSTANCE_H

#include <stddef.h>

#include "model.h"

typedef enum {
    PHASE_INSTANTIATED,
    PHASE_INITIALIZATION,
    PHASE_STEP,
    PHASE_TERMINATED,
    PHASE_FAILED            /* a step returned an error: only get, terminate, reset and free remain */
} Phase;

/* Delivers one formatted message to the importer (the adapter knows its callback signature). */
typedef void (*InstanceLogger)(const Instance *instance, ModelStatus status, const char *category,
                               const char *message);

struct Instance {
    char *name;
    InstanceLogger logger;
    void *importer;          /* the adapter's callbacks and environment pointer */
    int logging_on;          /* info messages are sent only when on; warnings and errors always */
    Phase phase;
    double start_time;
    double time;
    double fault_time;       /* used by the fault variants only */
    Model *model;
};

/* The guid (FMI 2) / instantiationToken (FMI 3) of the model description built with this binary.
 * The builder defines it in a generated token.c, so that the other objects can be reused. */
extern const char FMU_INSTANTIATION_TOKEN[];

/* Start values chosen at build time (build_fmu(start_values=...)), also in the token.c: applied
 * over the model's own after model_set_start_values, so the binary starts from the same values
 * as the "start" attributes the builder wrote into the model description. */
typedef struct {
    unsigned int vr;
    double value;            /* an Enumeration's value is a whole number */
} BuiltStartValue;
extern const BuiltStartValue FMU_START_VALUES[];
extern const size_t FMU_START_VALUE_COUNT;

/* Value reference of the fault_time_s parameter that the builder adds to the fault variants. */
#define VR_FAULT_TIME 900u

Instance *instance_new(const char *name, InstanceLogger logger, void *importer, int logging_on);
void instance_free(Instance *instance);
ModelStatus instance_check_token(const Instance *instance, const char *token);

ModelStatus instance_enter_initialization(Instance *instance, double start_time);
ModelStatus instance_exit_initialization(Instance *instance);
ModelStatus instance_terminate(Instance *instance);
ModelStatus instance_reset(Instance *instance);

ModelStatus instance_get_float64(Instance *instance, unsigned int vr, double *value);
ModelStatus instance_set_float64(Instance *instance, unsigned int vr, double value);
ModelStatus instance_get_enum(Instance *instance, unsigned int vr, long long *value);
ModelStatus instance_set_enum(Instance *instance, unsigned int vr, long long value);

ModelStatus instance_do_step(Instance *instance, double time, double step);

/* FMU state: an opaque heap copy of the phase, time and model struct. */
ModelStatus instance_get_state(Instance *instance, void **state);
ModelStatus instance_set_state(Instance *instance, const void *state);
void instance_free_state(void *state);
size_t instance_serialized_size(void);
ModelStatus instance_serialize(Instance *instance, const void *state, unsigned char *buffer, size_t size);
ModelStatus instance_deserialize(Instance *instance, const unsigned char *buffer, size_t size, void **state);

const char *phase_name(Phase phase);

#endif
