/*
 * A hostile partner model: the native code a partner could put in an FMU, for the sandbox tests.
 * Its parameter `attack` chooses what its first doStep does:
 *
 *   1 probe: read the LIMS's secret key and database, connect to the web port, write outside its
 *     scratch folder, look for FASTLIMS_* variables, fork HOSTILE_FORKS times; each success is an
 *     output (leak_* = 1, forks = how many forks succeeded), so a test sees what got through;
 *   2 spin: burn CPU until something stops it;
 *   3 fill: write an ever larger file in its working folder;
 *   4 hog: allocate and touch HOSTILE_HOG_BYTES (alloc_failed = 1 when refused).
 *
 * The test writes the targets as #defines above this file's text (HOSTILE_SECRET, HOSTILE_DB,
 * HOSTILE_OUTSIDE, HOSTILE_PORT, HOSTILE_FORKS, HOSTILE_HOG_BYTES) before building it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model.h"

extern char **environ;

struct Model {
    double attack;
    double leak_secret, leak_db, leak_net, leak_write, leak_env, forks, alloc_failed;
    int done;
};

const char MODEL_NAME[] = "hostile";
const size_t MODEL_SIZE = sizeof(Model);

const VariableInfo MODEL_VARIABLES[] = {
    {1, "attack", KIND_FLOAT64, CAUSALITY_PARAMETER, VARIABILITY_FIXED, offsetof(Model, attack)},
    {30, "leak_secret", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, leak_secret)},
    {31, "leak_db", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, leak_db)},
    {32, "leak_net", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, leak_net)},
    {33, "leak_write", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, leak_write)},
    {34, "leak_env", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, leak_env)},
    {35, "forks", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, forks)},
    {36, "alloc_failed", KIND_FLOAT64, CAUSALITY_OUTPUT, VARIABILITY_CONTINUOUS, offsetof(Model, alloc_failed)},
};
const size_t MODEL_VARIABLE_COUNT = sizeof MODEL_VARIABLES / sizeof MODEL_VARIABLES[0];

void model_set_start_values(Model *m) { m->attack = 1.0; }

ModelStatus model_check_parameters(const Model *m, const Instance *instance) {
    (void)m;
    (void)instance;
    return MODEL_OK;
}

void model_start(Model *m) {
    m->leak_secret = m->leak_db = m->leak_net = m->leak_write = m->leak_env = m->forks = m->alloc_failed = 0.0;
    m->done = 0;
}

void model_calculate_outputs(Model *m) { (void)m; }

static double can_read(const char *path) {
    char buffer[64];
    FILE *file = fopen(path, "rb");
    if (file == NULL) return 0.0;
    size_t got = fread(buffer, 1, sizeof buffer, file);
    fclose(file);
    return got > 0 ? 1.0 : 0.0;
}

static double can_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0.0;
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int connected = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
    close(fd);
    return connected ? 1.0 : 0.0;
}

static double can_write(const char *path) {
    FILE *file = fopen(path, "w");
    if (file == NULL) return 0.0;
    fputs("written by a hostile FMU\n", file);
    fclose(file);
    return 1.0;
}

static double secrets_in_environment(void) {
    double found = 0.0;
    for (char **entry = environ; entry != NULL && *entry != NULL; ++entry)
        if (strncmp(*entry, "FASTLIMS_", 9) == 0) found += 1.0;
    return found;
}

static double fork_bomb(int attempts) {
    double made = 0.0;
    for (int i = 0; i < attempts; ++i) {
        pid_t pid = fork();
        if (pid == 0) {
            for (;;) pause();
        }
        if (pid < 0) break;
        made += 1.0;
    }
    return made;
}

static void attack(Model *m) {
    if (m->attack == 1.0) {
        m->leak_secret = can_read(HOSTILE_SECRET);
        m->leak_db = can_read(HOSTILE_DB);
        m->leak_net = can_connect(HOSTILE_PORT);
        m->leak_write = can_write(HOSTILE_OUTSIDE);
        m->leak_env = secrets_in_environment();
        m->forks = fork_bomb(HOSTILE_FORKS);
    } else if (m->attack == 2.0) {
        volatile unsigned long spin = 0;
        for (;;) ++spin;
    } else if (m->attack == 3.0) {
        FILE *file = fopen("hostile-fill.bin", "wb");
        static char block[1 << 16];
        while (file != NULL && fwrite(block, 1, sizeof block, file) == sizeof block) {
        }
        if (file != NULL) fclose(file);
    } else if (m->attack == 4.0) {
        char *memory = malloc((size_t)HOSTILE_HOG_BYTES);
        if (memory == NULL) {
            m->alloc_failed = 1.0;
        } else {
            memset(memory, 1, (size_t)HOSTILE_HOG_BYTES);
            free(memory);
        }
    }
}

ModelStatus model_do_step(Model *m, const Instance *instance, double time, double step) {
    (void)instance;
    (void)time;
    (void)step;
    if (!m->done) {
        m->done = 1;
        attack(m);
    }
    return MODEL_OK;
}
