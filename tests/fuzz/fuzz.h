/*
 * The entry points every harness here defines for libFuzzer, and replay.c
 * calls in the normal build. LLVMFuzzerInitialize is optional.
 */
#ifndef IB_TESTS_FUZZ_H
#define IB_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
