/*
 * FMI 3.0 co-simulation interface over instance.c. Every function of fmi3Functions.h is
 * exported (FMPy refuses a binary that lacks one); model exchange, scheduled execution,
 * clocks and the variable types the models do not use only report an error.
 */
#include <stdlib.h>
#include <string.h>

#include "fmi3Functions.h"
#include "instance.h"

typedef struct {
    fmi3LogMessageCallback log_message;
    fmi3InstanceEnvironment environment;
} Importer;

static void log_to_importer(const Instance *instance, ModelStatus status, const char *category,
                            const char *message) {
    const Importer *importer = instance->importer;
    if (importer == NULL || importer->log_message == NULL) return;
    importer->log_message(importer->environment, (fmi3Status)status, category, message);
}

#define INSTANCE ((Instance *)instance)

#define REQUIRE_INSTANCE()                         \
    do {                                           \
        if (instance == NULL) return fmi3Error;    \
    } while (0)

static fmi3Status unsupported(fmi3Instance instance, const char *function) {
    if (instance != NULL)
        instance_log(INSTANCE, MODEL_ERROR, "logStatusError", "%s is not supported by this co-simulation FMU",
                     function);
    return fmi3Error;
}

const char *fmi3GetVersion(void) { return fmi3Version; }

fmi3Status fmi3SetDebugLogging(fmi3Instance instance, fmi3Boolean loggingOn, size_t nCategories,
                               const fmi3String categories[]) {
    (void)nCategories, (void)categories;
    REQUIRE_INSTANCE();
    INSTANCE->logging_on = loggingOn;
    return fmi3OK;
}

fmi3Instance fmi3InstantiateModelExchange(fmi3String instanceName, fmi3String instantiationToken,
                                          fmi3String resourcePath, fmi3Boolean visible, fmi3Boolean loggingOn,
                                          fmi3InstanceEnvironment instanceEnvironment,
                                          fmi3LogMessageCallback logMessage) {
    (void)instanceName, (void)instantiationToken, (void)resourcePath, (void)visible, (void)loggingOn;
    if (logMessage != NULL)
        logMessage(instanceEnvironment, fmi3Error, "logStatusError", "this FMU supports co-simulation only");
    return NULL;
}

fmi3Instance fmi3InstantiateCoSimulation(fmi3String instanceName, fmi3String instantiationToken,
                                         fmi3String resourcePath, fmi3Boolean visible, fmi3Boolean loggingOn,
                                         fmi3Boolean eventModeUsed, fmi3Boolean earlyReturnAllowed,
                                         const fmi3ValueReference requiredIntermediateVariables[],
                                         size_t nRequiredIntermediateVariables,
                                         fmi3InstanceEnvironment instanceEnvironment,
                                         fmi3LogMessageCallback logMessage,
                                         fmi3IntermediateUpdateCallback intermediateUpdate) {
    (void)resourcePath, (void)visible, (void)eventModeUsed, (void)earlyReturnAllowed;
    (void)requiredIntermediateVariables, (void)nRequiredIntermediateVariables, (void)intermediateUpdate;
    Importer *importer = calloc(1, sizeof(Importer));
    if (importer == NULL) return NULL;
    importer->log_message = logMessage;
    importer->environment = instanceEnvironment;
    Instance *created = instance_new(instanceName, log_to_importer, importer, loggingOn);
    if (created == NULL) {
        free(importer);
        return NULL;
    }
    if (instance_check_token(created, instantiationToken) != MODEL_OK) {
        instance_free(created);
        free(importer);
        return NULL;
    }
    return created;
}

fmi3Instance fmi3InstantiateScheduledExecution(fmi3String instanceName, fmi3String instantiationToken,
                                               fmi3String resourcePath, fmi3Boolean visible, fmi3Boolean loggingOn,
                                               fmi3InstanceEnvironment instanceEnvironment,
                                               fmi3LogMessageCallback logMessage,
                                               fmi3ClockUpdateCallback clockUpdate,
                                               fmi3LockPreemptionCallback lockPreemption,
                                               fmi3UnlockPreemptionCallback unlockPreemption) {
    (void)instanceName, (void)instantiationToken, (void)resourcePath, (void)visible, (void)loggingOn;
    (void)clockUpdate, (void)lockPreemption, (void)unlockPreemption;
    if (logMessage != NULL)
        logMessage(instanceEnvironment, fmi3Error, "logStatusError", "this FMU supports co-simulation only");
    return NULL;
}

void fmi3FreeInstance(fmi3Instance instance) {
    if (instance == NULL) return;
    void *importer = INSTANCE->importer;
    instance_free(INSTANCE);
    free(importer);
}

fmi3Status fmi3EnterInitializationMode(fmi3Instance instance, fmi3Boolean toleranceDefined, fmi3Float64 tolerance,
                                       fmi3Float64 startTime, fmi3Boolean stopTimeDefined, fmi3Float64 stopTime) {
    (void)toleranceDefined, (void)tolerance, (void)stopTimeDefined, (void)stopTime;
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_enter_initialization(INSTANCE, startTime);
}

fmi3Status fmi3ExitInitializationMode(fmi3Instance instance) {
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_exit_initialization(INSTANCE);
}

fmi3Status fmi3EnterEventMode(fmi3Instance instance) { return unsupported(instance, "fmi3EnterEventMode"); }

fmi3Status fmi3Terminate(fmi3Instance instance) {
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_terminate(INSTANCE);
}

fmi3Status fmi3Reset(fmi3Instance instance) {
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_reset(INSTANCE);
}

/* ---- variables ---- */

fmi3Status fmi3GetFloat64(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                          size_t nValueReferences, fmi3Float64 values[], size_t nValues) {
    REQUIRE_INSTANCE();
    if (nValues < nValueReferences) return unsupported(instance, "fmi3GetFloat64 with arrays");
    for (size_t i = 0; i < nValueReferences; i++) {
        ModelStatus status = instance_get_float64(INSTANCE, valueReferences[i], &values[i]);
        if (status != MODEL_OK) return (fmi3Status)status;
    }
    return fmi3OK;
}

fmi3Status fmi3SetFloat64(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                          size_t nValueReferences, const fmi3Float64 values[], size_t nValues) {
    REQUIRE_INSTANCE();
    if (nValues < nValueReferences) return unsupported(instance, "fmi3SetFloat64 with arrays");
    for (size_t i = 0; i < nValueReferences; i++) {
        ModelStatus status = instance_set_float64(INSTANCE, valueReferences[i], values[i]);
        if (status != MODEL_OK) return (fmi3Status)status;
    }
    return fmi3OK;
}

/* Enumerations are read and written as Int64 in FMI 3. */
fmi3Status fmi3GetInt64(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                        size_t nValueReferences, fmi3Int64 values[], size_t nValues) {
    REQUIRE_INSTANCE();
    if (nValues < nValueReferences) return unsupported(instance, "fmi3GetInt64 with arrays");
    for (size_t i = 0; i < nValueReferences; i++) {
        long long v = 0;
        ModelStatus status = instance_get_enum(INSTANCE, valueReferences[i], &v);
        if (status != MODEL_OK) return (fmi3Status)status;
        values[i] = (fmi3Int64)v;
    }
    return fmi3OK;
}

fmi3Status fmi3SetInt64(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                        size_t nValueReferences, const fmi3Int64 values[], size_t nValues) {
    REQUIRE_INSTANCE();
    if (nValues < nValueReferences) return unsupported(instance, "fmi3SetInt64 with arrays");
    for (size_t i = 0; i < nValueReferences; i++) {
        ModelStatus status = instance_set_enum(INSTANCE, valueReferences[i], (long long)values[i]);
        if (status != MODEL_OK) return (fmi3Status)status;
    }
    return fmi3OK;
}

/* The models have no variables of these types: any non-empty request is an error. */
#define NO_VARIABLES_OF_TYPE(function, type, constness)                                                        \
    fmi3Status function(fmi3Instance instance, const fmi3ValueReference valueReferences[],                    \
                        size_t nValueReferences, constness type values[], size_t nValues) {                    \
        (void)valueReferences, (void)values, (void)nValues;                                                   \
        return nValueReferences == 0 ? fmi3OK : unsupported(instance, #function " (no variable of this type)"); \
    }

NO_VARIABLES_OF_TYPE(fmi3GetFloat32, fmi3Float32, )
NO_VARIABLES_OF_TYPE(fmi3GetInt8, fmi3Int8, )
NO_VARIABLES_OF_TYPE(fmi3GetUInt8, fmi3UInt8, )
NO_VARIABLES_OF_TYPE(fmi3GetInt16, fmi3Int16, )
NO_VARIABLES_OF_TYPE(fmi3GetUInt16, fmi3UInt16, )
NO_VARIABLES_OF_TYPE(fmi3GetInt32, fmi3Int32, )
NO_VARIABLES_OF_TYPE(fmi3GetUInt32, fmi3UInt32, )
NO_VARIABLES_OF_TYPE(fmi3GetUInt64, fmi3UInt64, )
NO_VARIABLES_OF_TYPE(fmi3GetBoolean, fmi3Boolean, )
NO_VARIABLES_OF_TYPE(fmi3GetString, fmi3String, )
NO_VARIABLES_OF_TYPE(fmi3SetFloat32, fmi3Float32, const)
NO_VARIABLES_OF_TYPE(fmi3SetInt8, fmi3Int8, const)
NO_VARIABLES_OF_TYPE(fmi3SetUInt8, fmi3UInt8, const)
NO_VARIABLES_OF_TYPE(fmi3SetInt16, fmi3Int16, const)
NO_VARIABLES_OF_TYPE(fmi3SetUInt16, fmi3UInt16, const)
NO_VARIABLES_OF_TYPE(fmi3SetInt32, fmi3Int32, const)
NO_VARIABLES_OF_TYPE(fmi3SetUInt32, fmi3UInt32, const)
NO_VARIABLES_OF_TYPE(fmi3SetUInt64, fmi3UInt64, const)
NO_VARIABLES_OF_TYPE(fmi3SetBoolean, fmi3Boolean, const)
NO_VARIABLES_OF_TYPE(fmi3SetString, fmi3String, const)

fmi3Status fmi3GetBinary(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                         size_t nValueReferences, size_t valueSizes[], fmi3Binary values[], size_t nValues) {
    (void)valueReferences, (void)valueSizes, (void)values, (void)nValues;
    return nValueReferences == 0 ? fmi3OK : unsupported(instance, "fmi3GetBinary (no Binary variable)");
}

fmi3Status fmi3SetBinary(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                         size_t nValueReferences, const size_t valueSizes[], const fmi3Binary values[],
                         size_t nValues) {
    (void)valueReferences, (void)valueSizes, (void)values, (void)nValues;
    return nValueReferences == 0 ? fmi3OK : unsupported(instance, "fmi3SetBinary (no Binary variable)");
}

fmi3Status fmi3GetClock(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                        size_t nValueReferences, fmi3Clock values[]) {
    (void)valueReferences, (void)values;
    return nValueReferences == 0 ? fmi3OK : unsupported(instance, "fmi3GetClock (no Clock variable)");
}

fmi3Status fmi3SetClock(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                        size_t nValueReferences, const fmi3Clock values[]) {
    (void)valueReferences, (void)values;
    return nValueReferences == 0 ? fmi3OK : unsupported(instance, "fmi3SetClock (no Clock variable)");
}

fmi3Status fmi3GetNumberOfVariableDependencies(fmi3Instance instance, fmi3ValueReference valueReference,
                                               size_t *nDependencies) {
    (void)valueReference, (void)nDependencies;
    return unsupported(instance, "fmi3GetNumberOfVariableDependencies (see the ModelStructure)");
}

fmi3Status fmi3GetVariableDependencies(fmi3Instance instance, fmi3ValueReference dependent,
                                       size_t elementIndicesOfDependent[], fmi3ValueReference independents[],
                                       size_t elementIndicesOfIndependents[], fmi3DependencyKind dependencyKinds[],
                                       size_t nDependencies) {
    (void)dependent, (void)elementIndicesOfDependent, (void)independents, (void)elementIndicesOfIndependents;
    (void)dependencyKinds, (void)nDependencies;
    return unsupported(instance, "fmi3GetVariableDependencies (see the ModelStructure)");
}

/* ---- FMU state ---- */

fmi3Status fmi3GetFMUState(fmi3Instance instance, fmi3FMUState *FMUState) {
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_get_state(INSTANCE, FMUState);
}

fmi3Status fmi3SetFMUState(fmi3Instance instance, fmi3FMUState FMUState) {
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_set_state(INSTANCE, FMUState);
}

fmi3Status fmi3FreeFMUState(fmi3Instance instance, fmi3FMUState *FMUState) {
    (void)instance;
    if (FMUState != NULL) {
        instance_free_state(*FMUState);
        *FMUState = NULL;
    }
    return fmi3OK;
}

fmi3Status fmi3SerializedFMUStateSize(fmi3Instance instance, fmi3FMUState FMUState, size_t *size) {
    (void)FMUState;
    REQUIRE_INSTANCE();
    *size = instance_serialized_size();
    return fmi3OK;
}

fmi3Status fmi3SerializeFMUState(fmi3Instance instance, fmi3FMUState FMUState, fmi3Byte serializedState[],
                                 size_t size) {
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_serialize(INSTANCE, FMUState, serializedState, size);
}

fmi3Status fmi3DeserializeFMUState(fmi3Instance instance, const fmi3Byte serializedState[], size_t size,
                                   fmi3FMUState *FMUState) {
    REQUIRE_INSTANCE();
    return (fmi3Status)instance_deserialize(INSTANCE, serializedState, size, FMUState);
}

/* ---- not supported: derivatives, configuration, clocks, model exchange ---- */

fmi3Status fmi3GetDirectionalDerivative(fmi3Instance instance, const fmi3ValueReference unknowns[], size_t nUnknowns,
                                        const fmi3ValueReference knowns[], size_t nKnowns, const fmi3Float64 seed[],
                                        size_t nSeed, fmi3Float64 sensitivity[], size_t nSensitivity) {
    (void)unknowns, (void)nUnknowns, (void)knowns, (void)nKnowns, (void)seed, (void)nSeed, (void)sensitivity;
    (void)nSensitivity;
    return unsupported(instance, "fmi3GetDirectionalDerivative");
}

fmi3Status fmi3GetAdjointDerivative(fmi3Instance instance, const fmi3ValueReference unknowns[], size_t nUnknowns,
                                    const fmi3ValueReference knowns[], size_t nKnowns, const fmi3Float64 seed[],
                                    size_t nSeed, fmi3Float64 sensitivity[], size_t nSensitivity) {
    (void)unknowns, (void)nUnknowns, (void)knowns, (void)nKnowns, (void)seed, (void)nSeed, (void)sensitivity;
    (void)nSensitivity;
    return unsupported(instance, "fmi3GetAdjointDerivative");
}

fmi3Status fmi3EnterConfigurationMode(fmi3Instance instance) {
    return unsupported(instance, "fmi3EnterConfigurationMode (no structural parameters)");
}

fmi3Status fmi3ExitConfigurationMode(fmi3Instance instance) {
    return unsupported(instance, "fmi3ExitConfigurationMode (no structural parameters)");
}

fmi3Status fmi3GetIntervalDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                                  size_t nValueReferences, fmi3Float64 intervals[],
                                  fmi3IntervalQualifier qualifiers[]) {
    (void)valueReferences, (void)nValueReferences, (void)intervals, (void)qualifiers;
    return unsupported(instance, "fmi3GetIntervalDecimal");
}

fmi3Status fmi3GetIntervalFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                                   size_t nValueReferences, fmi3UInt64 counters[], fmi3UInt64 resolutions[],
                                   fmi3IntervalQualifier qualifiers[]) {
    (void)valueReferences, (void)nValueReferences, (void)counters, (void)resolutions, (void)qualifiers;
    return unsupported(instance, "fmi3GetIntervalFraction");
}

fmi3Status fmi3GetShiftDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                               size_t nValueReferences, fmi3Float64 shifts[]) {
    (void)valueReferences, (void)nValueReferences, (void)shifts;
    return unsupported(instance, "fmi3GetShiftDecimal");
}

fmi3Status fmi3GetShiftFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                                size_t nValueReferences, fmi3UInt64 counters[], fmi3UInt64 resolutions[]) {
    (void)valueReferences, (void)nValueReferences, (void)counters, (void)resolutions;
    return unsupported(instance, "fmi3GetShiftFraction");
}

fmi3Status fmi3SetIntervalDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                                  size_t nValueReferences, const fmi3Float64 intervals[]) {
    (void)valueReferences, (void)nValueReferences, (void)intervals;
    return unsupported(instance, "fmi3SetIntervalDecimal");
}

fmi3Status fmi3SetIntervalFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                                   size_t nValueReferences, const fmi3UInt64 counters[],
                                   const fmi3UInt64 resolutions[]) {
    (void)valueReferences, (void)nValueReferences, (void)counters, (void)resolutions;
    return unsupported(instance, "fmi3SetIntervalFraction");
}

fmi3Status fmi3SetShiftDecimal(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                               size_t nValueReferences, const fmi3Float64 shifts[]) {
    (void)valueReferences, (void)nValueReferences, (void)shifts;
    return unsupported(instance, "fmi3SetShiftDecimal");
}

fmi3Status fmi3SetShiftFraction(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                                size_t nValueReferences, const fmi3UInt64 counters[],
                                const fmi3UInt64 resolutions[]) {
    (void)valueReferences, (void)nValueReferences, (void)counters, (void)resolutions;
    return unsupported(instance, "fmi3SetShiftFraction");
}

fmi3Status fmi3EvaluateDiscreteStates(fmi3Instance instance) {
    return unsupported(instance, "fmi3EvaluateDiscreteStates");
}

fmi3Status fmi3UpdateDiscreteStates(fmi3Instance instance, fmi3Boolean *discreteStatesNeedUpdate,
                                    fmi3Boolean *terminateSimulation, fmi3Boolean *nominalsOfContinuousStatesChanged,
                                    fmi3Boolean *valuesOfContinuousStatesChanged, fmi3Boolean *nextEventTimeDefined,
                                    fmi3Float64 *nextEventTime) {
    (void)discreteStatesNeedUpdate, (void)terminateSimulation, (void)nominalsOfContinuousStatesChanged;
    (void)valuesOfContinuousStatesChanged, (void)nextEventTimeDefined, (void)nextEventTime;
    return unsupported(instance, "fmi3UpdateDiscreteStates (no event mode)");
}

fmi3Status fmi3EnterContinuousTimeMode(fmi3Instance instance) {
    return unsupported(instance, "fmi3EnterContinuousTimeMode");
}

fmi3Status fmi3CompletedIntegratorStep(fmi3Instance instance, fmi3Boolean noSetFMUStatePriorToCurrentPoint,
                                       fmi3Boolean *enterEventMode, fmi3Boolean *terminateSimulation) {
    (void)noSetFMUStatePriorToCurrentPoint, (void)enterEventMode, (void)terminateSimulation;
    return unsupported(instance, "fmi3CompletedIntegratorStep");
}

fmi3Status fmi3SetTime(fmi3Instance instance, fmi3Float64 time) {
    (void)time;
    return unsupported(instance, "fmi3SetTime");
}

fmi3Status fmi3SetContinuousStates(fmi3Instance instance, const fmi3Float64 continuousStates[],
                                   size_t nContinuousStates) {
    (void)continuousStates, (void)nContinuousStates;
    return unsupported(instance, "fmi3SetContinuousStates");
}

fmi3Status fmi3GetContinuousStateDerivatives(fmi3Instance instance, fmi3Float64 derivatives[],
                                             size_t nContinuousStates) {
    (void)derivatives, (void)nContinuousStates;
    return unsupported(instance, "fmi3GetContinuousStateDerivatives");
}

fmi3Status fmi3GetEventIndicators(fmi3Instance instance, fmi3Float64 eventIndicators[], size_t nEventIndicators) {
    (void)eventIndicators, (void)nEventIndicators;
    return unsupported(instance, "fmi3GetEventIndicators");
}

fmi3Status fmi3GetContinuousStates(fmi3Instance instance, fmi3Float64 continuousStates[],
                                   size_t nContinuousStates) {
    (void)continuousStates, (void)nContinuousStates;
    return unsupported(instance, "fmi3GetContinuousStates");
}

fmi3Status fmi3GetNominalsOfContinuousStates(fmi3Instance instance, fmi3Float64 nominals[],
                                             size_t nContinuousStates) {
    (void)nominals, (void)nContinuousStates;
    return unsupported(instance, "fmi3GetNominalsOfContinuousStates");
}

fmi3Status fmi3GetNumberOfEventIndicators(fmi3Instance instance, size_t *nEventIndicators) {
    REQUIRE_INSTANCE();
    *nEventIndicators = 0;
    return fmi3OK;
}

fmi3Status fmi3GetNumberOfContinuousStates(fmi3Instance instance, size_t *nContinuousStates) {
    REQUIRE_INSTANCE();
    *nContinuousStates = 0;
    return fmi3OK;
}

/* ---- co-simulation ---- */

fmi3Status fmi3EnterStepMode(fmi3Instance instance) {
    /* Without event mode, step mode follows initialization directly; accept the call there. */
    REQUIRE_INSTANCE();
    if (INSTANCE->phase == PHASE_STEP) return fmi3OK;
    return unsupported(instance, "fmi3EnterStepMode outside step mode (hasEventMode is false)");
}

fmi3Status fmi3GetOutputDerivatives(fmi3Instance instance, const fmi3ValueReference valueReferences[],
                                    size_t nValueReferences, const fmi3Int32 orders[], fmi3Float64 values[],
                                    size_t nValues) {
    (void)valueReferences, (void)nValueReferences, (void)orders, (void)values, (void)nValues;
    return unsupported(instance, "fmi3GetOutputDerivatives (maxOutputDerivativeOrder is 0)");
}

fmi3Status fmi3DoStep(fmi3Instance instance, fmi3Float64 currentCommunicationPoint,
                      fmi3Float64 communicationStepSize, fmi3Boolean noSetFMUStatePriorToCurrentPoint,
                      fmi3Boolean *eventHandlingNeeded, fmi3Boolean *terminateSimulation, fmi3Boolean *earlyReturn,
                      fmi3Float64 *lastSuccessfulTime) {
    (void)noSetFMUStatePriorToCurrentPoint;
    REQUIRE_INSTANCE();
    ModelStatus status = instance_do_step(INSTANCE, currentCommunicationPoint, communicationStepSize);
    if (eventHandlingNeeded != NULL) *eventHandlingNeeded = fmi3False;
    if (terminateSimulation != NULL) *terminateSimulation = fmi3False;
    if (earlyReturn != NULL) *earlyReturn = fmi3False;
    if (lastSuccessfulTime != NULL) *lastSuccessfulTime = INSTANCE->time;
    return (fmi3Status)status;
}

fmi3Status fmi3ActivateModelPartition(fmi3Instance instance, fmi3ValueReference clockReference,
                                      fmi3Float64 activationTime) {
    (void)clockReference, (void)activationTime;
    return unsupported(instance, "fmi3ActivateModelPartition");
}
