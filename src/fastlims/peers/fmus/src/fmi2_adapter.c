/*
 * FMI 2.0 co-simulation interface over instance.c. Every function of fmi2Functions.h is
 * exported (FMPy refuses a binary that lacks one); the model-exchange ones and the unused
 * types only report an error.
 */
#include <stdlib.h>
#include <string.h>

#include "fmi2Functions.h"
#include "instance.h"

typedef struct {
    fmi2CallbackLogger logger;
    fmi2ComponentEnvironment environment;
} Importer;

static void log_to_importer(const Instance *instance, ModelStatus status, const char *category,
                            const char *message) {
    const Importer *importer = instance->importer;
    if (importer == NULL || importer->logger == NULL) return;
    /* FMI 2 loggers treat the message as a printf format, and importers written with ctypes
     * (FMPy) cannot read variadic arguments: pass the formatted text with '%' doubled. */
    char escaped[2048];
    size_t j = 0;
    for (size_t i = 0; message[i] != '\0' && j + 2 < sizeof escaped; i++) {
        if (message[i] == '%') escaped[j++] = '%';
        escaped[j++] = message[i];
    }
    escaped[j] = '\0';
    importer->logger(importer->environment, instance->name, (fmi2Status)status, category, escaped);
}

#define INSTANCE ((Instance *)c)

#define REQUIRE_INSTANCE(c) \
    do {                    \
        if ((c) == NULL) return fmi2Error; \
    } while (0)

static fmi2Status unsupported(fmi2Component c, const char *function) {
    if (c != NULL)
        instance_log(INSTANCE, MODEL_ERROR, "logStatusError", "%s is not supported by this co-simulation FMU",
                     function);
    return fmi2Error;
}

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }

const char *fmi2GetVersion(void) { return fmi2Version; }

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean loggingOn, size_t nCategories,
                               const fmi2String categories[]) {
    (void)nCategories;
    (void)categories;
    REQUIRE_INSTANCE(c);
    INSTANCE->logging_on = loggingOn;
    return fmi2OK;
}

fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String fmuGUID,
                              fmi2String fmuResourceLocation, const fmi2CallbackFunctions *functions,
                              fmi2Boolean visible, fmi2Boolean loggingOn) {
    (void)fmuResourceLocation;
    (void)visible;
    Importer *importer = calloc(1, sizeof(Importer));
    if (importer == NULL) return NULL;
    if (functions != NULL) {
        importer->logger = functions->logger;
        importer->environment = functions->componentEnvironment;
    }
    Instance *instance = instance_new(instanceName, log_to_importer, importer, loggingOn);
    if (instance == NULL) {
        free(importer);
        return NULL;
    }
    if (fmuType != fmi2CoSimulation) {
        instance_log(instance, MODEL_ERROR, "logStatusError", "this FMU supports co-simulation only");
    } else if (instance_check_token(instance, fmuGUID) == MODEL_OK) {
        return instance;
    }
    instance_free(instance);
    free(importer);
    return NULL;
}

void fmi2FreeInstance(fmi2Component c) {
    if (c == NULL) return;
    void *importer = INSTANCE->importer;
    instance_free(INSTANCE);
    free(importer);
}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean toleranceDefined, fmi2Real tolerance,
                               fmi2Real startTime, fmi2Boolean stopTimeDefined, fmi2Real stopTime) {
    (void)toleranceDefined;
    (void)tolerance;
    (void)stopTimeDefined;
    (void)stopTime;
    REQUIRE_INSTANCE(c);
    if (INSTANCE->phase != PHASE_INSTANTIATED) {
        instance_log(INSTANCE, MODEL_ERROR, "logStatusError", "fmi2SetupExperiment is allowed only before "
                     "initialization, not when %s", phase_name(INSTANCE->phase));
        return fmi2Error;
    }
    INSTANCE->start_time = startTime;
    INSTANCE->time = startTime;
    return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_enter_initialization(INSTANCE, INSTANCE->start_time);
}

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_exit_initialization(INSTANCE);
}

fmi2Status fmi2Terminate(fmi2Component c) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_terminate(INSTANCE);
}

fmi2Status fmi2Reset(fmi2Component c) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_reset(INSTANCE);
}

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Real value[]) {
    REQUIRE_INSTANCE(c);
    for (size_t i = 0; i < nvr; i++) {
        ModelStatus status = instance_get_float64(INSTANCE, vr[i], &value[i]);
        if (status != MODEL_OK) return (fmi2Status)status;
    }
    return fmi2OK;
}

fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Integer value[]) {
    REQUIRE_INSTANCE(c);
    for (size_t i = 0; i < nvr; i++) {
        long long v = 0;
        ModelStatus status = instance_get_enum(INSTANCE, vr[i], &v);
        if (status != MODEL_OK) return (fmi2Status)status;
        value[i] = (fmi2Integer)v;
    }
    return fmi2OK;
}

fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2Boolean value[]) {
    (void)vr;
    (void)value;
    return nvr == 0 ? fmi2OK : unsupported(c, "fmi2GetBoolean (the model has no Boolean variables)");
}

fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, fmi2String value[]) {
    (void)vr;
    (void)value;
    return nvr == 0 ? fmi2OK : unsupported(c, "fmi2GetString (the model has no String variables)");
}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Real value[]) {
    REQUIRE_INSTANCE(c);
    for (size_t i = 0; i < nvr; i++) {
        ModelStatus status = instance_set_float64(INSTANCE, vr[i], value[i]);
        if (status != MODEL_OK) return (fmi2Status)status;
    }
    return fmi2OK;
}

fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Integer value[]) {
    REQUIRE_INSTANCE(c);
    for (size_t i = 0; i < nvr; i++) {
        ModelStatus status = instance_set_enum(INSTANCE, vr[i], value[i]);
        if (status != MODEL_OK) return (fmi2Status)status;
    }
    return fmi2OK;
}

fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2Boolean value[]) {
    (void)vr;
    (void)value;
    return nvr == 0 ? fmi2OK : unsupported(c, "fmi2SetBoolean (the model has no Boolean variables)");
}

fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr, const fmi2String value[]) {
    (void)vr;
    (void)value;
    return nvr == 0 ? fmi2OK : unsupported(c, "fmi2SetString (the model has no String variables)");
}

fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *FMUstate) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_get_state(INSTANCE, FMUstate);
}

fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate FMUstate) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_set_state(INSTANCE, FMUstate);
}

fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *FMUstate) {
    (void)c;
    if (FMUstate != NULL) {
        instance_free_state(*FMUstate);
        *FMUstate = NULL;
    }
    return fmi2OK;
}

fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate FMUstate, size_t *size) {
    (void)FMUstate;
    REQUIRE_INSTANCE(c);
    *size = instance_serialized_size();
    return fmi2OK;
}

fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate FMUstate, fmi2Byte serializedState[], size_t size) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_serialize(INSTANCE, FMUstate, (unsigned char *)serializedState, size);
}

fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte serializedState[], size_t size,
                                   fmi2FMUstate *FMUstate) {
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_deserialize(INSTANCE, (const unsigned char *)serializedState, size, FMUstate);
}

fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference vUnknown_ref[], size_t nUnknown,
                                        const fmi2ValueReference vKnown_ref[], size_t nKnown,
                                        const fmi2Real dvKnown[], fmi2Real dvUnknown[]) {
    (void)vUnknown_ref, (void)nUnknown, (void)vKnown_ref, (void)nKnown, (void)dvKnown, (void)dvUnknown;
    return unsupported(c, "fmi2GetDirectionalDerivative");
}

/* ---- model exchange: not supported ---- */

fmi2Status fmi2EnterEventMode(fmi2Component c) { return unsupported(c, "fmi2EnterEventMode"); }

fmi2Status fmi2NewDiscreteStates(fmi2Component c, fmi2EventInfo *eventInfo) {
    (void)eventInfo;
    return unsupported(c, "fmi2NewDiscreteStates");
}

fmi2Status fmi2EnterContinuousTimeMode(fmi2Component c) { return unsupported(c, "fmi2EnterContinuousTimeMode"); }

fmi2Status fmi2CompletedIntegratorStep(fmi2Component c, fmi2Boolean noSetFMUStatePriorToCurrentPoint,
                                       fmi2Boolean *enterEventMode, fmi2Boolean *terminateSimulation) {
    (void)noSetFMUStatePriorToCurrentPoint, (void)enterEventMode, (void)terminateSimulation;
    return unsupported(c, "fmi2CompletedIntegratorStep");
}

fmi2Status fmi2SetTime(fmi2Component c, fmi2Real time) {
    (void)time;
    return unsupported(c, "fmi2SetTime");
}

fmi2Status fmi2SetContinuousStates(fmi2Component c, const fmi2Real x[], size_t nx) {
    (void)x, (void)nx;
    return unsupported(c, "fmi2SetContinuousStates");
}

fmi2Status fmi2GetDerivatives(fmi2Component c, fmi2Real derivatives[], size_t nx) {
    (void)derivatives, (void)nx;
    return unsupported(c, "fmi2GetDerivatives");
}

fmi2Status fmi2GetEventIndicators(fmi2Component c, fmi2Real eventIndicators[], size_t ni) {
    (void)eventIndicators, (void)ni;
    return unsupported(c, "fmi2GetEventIndicators");
}

fmi2Status fmi2GetContinuousStates(fmi2Component c, fmi2Real x[], size_t nx) {
    (void)x, (void)nx;
    return unsupported(c, "fmi2GetContinuousStates");
}

fmi2Status fmi2GetNominalsOfContinuousStates(fmi2Component c, fmi2Real x_nominal[], size_t nx) {
    (void)x_nominal, (void)nx;
    return unsupported(c, "fmi2GetNominalsOfContinuousStates");
}

/* ---- co-simulation ---- */

fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                       const fmi2Integer order[], const fmi2Real value[]) {
    (void)vr, (void)nvr, (void)order, (void)value;
    return unsupported(c, "fmi2SetRealInputDerivatives (canInterpolateInputs is false)");
}

fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                                        const fmi2Integer order[], fmi2Real value[]) {
    (void)vr, (void)nvr, (void)order, (void)value;
    return unsupported(c, "fmi2GetRealOutputDerivatives (maxOutputDerivativeOrder is 0)");
}

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real currentCommunicationPoint, fmi2Real communicationStepSize,
                      fmi2Boolean noSetFMUStatePriorToCurrentPoint) {
    (void)noSetFMUStatePriorToCurrentPoint;
    REQUIRE_INSTANCE(c);
    return (fmi2Status)instance_do_step(INSTANCE, currentCommunicationPoint, communicationStepSize);
}

fmi2Status fmi2CancelStep(fmi2Component c) { return unsupported(c, "fmi2CancelStep (doStep never returns pending)"); }

fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *value) {
    (void)s, (void)value;
    return unsupported(c, "fmi2GetStatus");
}

fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *value) {
    REQUIRE_INSTANCE(c);
    if (s == fmi2LastSuccessfulTime) {
        *value = INSTANCE->time;
        return fmi2OK;
    }
    return unsupported(c, "fmi2GetRealStatus for this status kind");
}

fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *value) {
    (void)s, (void)value;
    return unsupported(c, "fmi2GetIntegerStatus");
}

fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *value) {
    REQUIRE_INSTANCE(c);
    if (s == fmi2Terminated) {
        *value = fmi2False;
        return fmi2OK;
    }
    return unsupported(c, "fmi2GetBooleanStatus for this status kind");
}

fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *value) {
    (void)s, (void)value;
    return unsupported(c, "fmi2GetStringStatus");
}
