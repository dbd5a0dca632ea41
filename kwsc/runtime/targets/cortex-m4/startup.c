/* Startup code for the Cortex-M4 on QEMU's mps2-an386: vector table, .data/.bss set-up, FPU enable,
 * newlib's semihosting I/O (librdimon), then main() (no C++ constructors); the exit status leaves through semihosting. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
#ifndef KWSC_NO_SEMIHOSTING
extern void initialise_monitor_handles(void);
#endif

void Reset_Handler(void);
void Default_Handler(void);

void Reset_Handler(void) {
    uint32_t* src = &_sidata;
    uint32_t* dst;
    volatile uint32_t* cpacr = (volatile uint32_t*)0xE000ED88u;
    /* CP10 and CP11 full access: the FPU must be on before any floating-point instruction runs. */
    *cpacr |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0u;
#ifndef KWSC_NO_SEMIHOSTING
    initialise_monitor_handles();
#endif
    exit(main());
}

void Default_Handler(void) {
    /* A fault in a test run: leave QEMU with a failure status instead of hanging. */
    exit(99);
}

__attribute__((section(".isr_vector"), used)) static void (*const vector_table[16])(void) = {
    (void (*)(void))(&_estack), /* initial stack pointer */
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    Default_Handler, /* SysTick */
};
