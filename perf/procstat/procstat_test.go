package procstat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeProc(t *testing.T, root string, pid, ppid int, comm string, ut, st, rssKB int) {
	t.Helper()
	dir := filepath.Join(root, itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fields := []string{itoa(pid), "(" + comm + ")", "S", itoa(ppid)}
	for i := 5; i <= 52; i++ {
		switch i {
		case 14:
			fields = append(fields, itoa(ut))
		case 15:
			fields = append(fields, itoa(st))
		default:
			fields = append(fields, "0")
		}
	}
	os.WriteFile(filepath.Join(dir, "stat"), []byte(strings.Join(fields, " ")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\t"+comm+"\nVmRSS:\t  "+itoa(rssKB)+" kB\nThreads:\t1\n"), 0o644)
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestTreeSumsDescendants(t *testing.T) {
	root := t.TempDir()
	writeProc(t, root, 10, 1, "beam.smp", 150, 50, 1000)
	writeProc(t, root, 11, 10, "erl_child (setup) x", 3, 2, 200)
	writeProc(t, root, 12, 11, "grandchild", 0, 100, 50)
	writeProc(t, root, 20, 1, "other", 999, 999, 9999)
	u, err := Reader{Root: root}.Tree(10)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3050 * time.Millisecond; u.CPU != want {
		t.Errorf("CPU = %v, want %v", u.CPU, want)
	}
	if want := int64(1250 * 1024); u.RSS != want {
		t.Errorf("RSS = %d, want %d", u.RSS, want)
	}
	if u.Procs != 3 {
		t.Errorf("Procs = %d, want 3", u.Procs)
	}
	if _, err := (Reader{Root: root}).Tree(99); err == nil {
		t.Error("missing process gave no error")
	}
}

func TestBadStat(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "5"), 0o755)
	os.WriteFile(filepath.Join(root, "5", "stat"), []byte("5 (x) S 1 2"), 0o644)
	if _, err := (Reader{Root: root}).Process(5); err == nil || !strings.Contains(err.Error(), "fields") {
		t.Errorf("err = %v, want a field-count error", err)
	}
}

// TestRealChild measures a real child that burns CPU and checks the reading
// is in the right range (the real /proc layout, USER_HZ).
func TestRealChild(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; read x")
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Skipf("no shell: %v", err)
	}
	defer func() { in.Close(); cmd.Wait() }()
	var u Usage
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		u, err = Reader{}.Process(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if u.CPU > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a real process; not synchronisation between our goroutines
	}
	if u.CPU <= 0 || u.RSS <= 0 {
		t.Fatalf("usage = %+v, want CPU and RSS above zero", u)
	}
}

// FuzzParse feeds arbitrary stat and status files to the parsers: they must
// return an error or sane values, never panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("1 (a b) S 0 1 1 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 5 100 50 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"), []byte("VmRSS:\t 12 kB\n"))
	f.Add([]byte("1 ((x)) Z"), []byte("VmRSS: x kB"))
	f.Fuzz(func(t *testing.T, stat, status []byte) {
		if fs, err := statFields(stat); err == nil && len(fs) < 22 {
			t.Fatalf("statFields accepted %d fields", len(fs))
		}
		if rss, err := vmRSS(status); err == nil && rss < 0 && !strings.Contains(string(status), "-") {
			t.Fatalf("negative RSS %d from %q", rss, status)
		}
	})
}
