package main

import (
	"sync"
	"syscall"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of <linux/prctl.h>.
const prSetChildSubreaper = 36

var subreaperOnce sync.Once

// becomeSubreaper makes this process the child subreaper of its
// descendants (Linux 3.4 and later): a process whose parent dies becomes
// its child instead of init's, so that reapGroup can reap it. Without
// this, on a machine whose init never reaps orphans, a killed grandchild
// would stay a zombie, which still counts as a member of its group. If the
// call fails, reapGroup waits for init to reap and may report the group
// as not gone.
func becomeSubreaper() {
	subreaperOnce.Do(func() {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}
