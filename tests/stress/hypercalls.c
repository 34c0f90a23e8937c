/* hypercalls: a guest kernel that calls the firmware endlessly.  Every SBI
 * call except set_timer is served by the host's main thread, so this guest
 * keeps the thread that serves every VM's exits and consoles as busy as one
 * vCPU can.  It alternates a call the firmware answers (BASE
 * get_spec_version) and one it refuses (an extension that does not exist),
 * and never ends by itself. */
#include "lib.h"

int main(void)
{
    begin("hypercalls");
    for (;;) {
        sbi_call(SBI_EXT_BASE, 0, 0, 0, 0, 0, 0, 0);
        sbi_call(0x0BADCA11UL, 0, 0, 0, 0, 0, 0, 0);
    }
}
