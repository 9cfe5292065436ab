/*
 * The contract between a model (battery_cell.c, cycler.c) and the FMI-independent instance
 * logic (instance.c). A model is a plain C struct plus a table that says where each variable
 * lives in it; instance.c does the FMI bookkeeping (modes, get/set checks, fault injection)
 * and fmi2_adapter.c / fmi3_adapter.c translate it to FMI 2.0 and FMI 3.0 calls.
 *
 * The value references and names in MODEL_VARIABLES must match the model's
 * <model>.fmi2.xml and <model>.fmi3.xml; tests/unit/fmus checks that they do.
 */
#ifndef FASTLIMS_MODEL_H
#define FASTLIMS_MODEL_H

#include <stddef.h>

/* Same numeric values as fmi2Status and fmi3Status. */
typedef enum { MODEL_OK = 0, MODEL_WARNING = 1, MODEL_DISCARD = 2, MODEL_ERROR = 3, MODEL_FATAL = 4 } ModelStatus;

typedef enum { KIND_FLOAT64, KIND_ENUM } ValueKind;  /* FMI 2: Real/Enumeration, FMI 3: Float64/Enumeration */

typedef enum { CAUSALITY_PARAMETER, CAUSALITY_INPUT, CAUSALITY_OUTPUT } Causality;

typedef enum { VARIABILITY_FIXED, VARIABILITY_TUNABLE, VARIABILITY_CONTINUOUS } Variability;

typedef struct {
    unsigned int vr;
    const char *name;
    ValueKind kind;          /* KIND_FLOAT64 lives in a double, KIND_ENUM in an int */
    Causality causality;
    Variability variability;
    size_t offset;           /* offsetof(Model, field) */
} VariableInfo;

/* Value reference 0 is the independent variable "time" in FMI 3 (never in a model's table). */
#define VR_TIME 0u

typedef struct Model Model;
typedef struct Instance Instance;

/* Logs through the importer's callback; category is one of the <LogCategories>. */
void instance_log(const Instance *instance, ModelStatus status, const char *category, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- implemented by each model ---- */

extern const char MODEL_NAME[];
extern const size_t MODEL_SIZE;                 /* sizeof(Model) */
extern const VariableInfo MODEL_VARIABLES[];
extern const size_t MODEL_VARIABLE_COUNT;

/* Start values of every variable (the "start" attributes of the model description). */
void model_set_start_values(Model *model);

/* Report every parameter value that makes the model meaningless; MODEL_OK if there is none. */
ModelStatus model_check_parameters(const Model *model, const Instance *instance);

/* Set the states from the parameters (initial SOC, temperature, ...). Called before outputs are
 * read in initialization mode and once more when it ends. */
void model_start(Model *model);

/* Compute the outputs from the states, inputs and parameters (cheap; called before every get). */
void model_calculate_outputs(Model *model);

/* Advance from time to time + step with the inputs held constant. */
ModelStatus model_do_step(Model *model, const Instance *instance, double time, double step);

#endif
