package peer

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestServerOutlivesStarterThread: a server must not die when the thread of
// the goroutine that started it ends (PR_SET_PDEATHSIG follows the thread).
// A goroutine that exits while locked to its thread ends that thread.
func TestServerOutlivesStarterThread(t *testing.T) {
	dir := t.TempDir()
	var p process
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		errc <- p.start([]string{"/bin/sleep", "30"}, nil, dir, "", filepath.Join(dir, "log"))
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	defer p.stop(time.Second)
	// Without the fix the kernel's SIGKILL lands within milliseconds of the thread's exit.
	select {
	case <-p.exited():
		t.Fatal("the server died with the thread that started it")
	case <-time.After(500 * time.Millisecond):
	}
	if p.pid() == 0 {
		t.Fatal("server not running")
	}
}
