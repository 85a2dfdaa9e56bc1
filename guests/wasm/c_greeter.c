/* Reactor written in C against wasi-libc (docs/guest-abi.md), built by build.sh with
 *   clang-14 --target=wasm32-wasi -mexec-model=reactor
 * init reads GREETING from the function's environment once (snapshotted at deploy); handle
 * answers {"greeting":"...","event_bytes":N,"calls":K} and logs one line on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char greeting[64] = "hello";
static uint32_t calls;
static char out[256];

__attribute__((export_name("alloc"))) void *alloc(uint32_t size) { return malloc(size ? size : 1); }

__attribute__((export_name("init"))) void init(void) {
    const char *g = getenv("GREETING");
    if (g) {
        strncpy(greeting, g, sizeof greeting - 1);
        greeting[sizeof greeting - 1] = 0;
    }
}

__attribute__((export_name("handle"))) uint64_t handle(char *event, uint32_t len) {
    free(event);
    calls++;
    fprintf(stderr, "c_greeter: call %u\n", (unsigned)calls);
    int n = snprintf(out, sizeof out, "{\"greeting\":\"%s\",\"event_bytes\":%u,\"calls\":%u}",
                     greeting, (unsigned)len, (unsigned)calls);
    return ((uint64_t)(uintptr_t)out << 32) | (uint32_t)n;
}
