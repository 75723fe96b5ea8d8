package loader

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
)

// cgroup is the cgroup v2 directory the programs attach to.
type cgroup struct {
	path string
	// Set when path is the child cgroup made for the process (see
	// processChild); close gives back this Loader's share of it.
	created bool
	parent  string
}

// processChild is the child cgroup the process was moved into, shared by
// every Loader in the process (several nodes in one test binary): cgroup
// membership belongs to the whole process, so the first Loader moves it in
// and the last one to close moves it back. This is package state only
// because the kernel's is process-wide.
var processChild struct {
	sync.Mutex
	path, parent string
	refs         int
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted, read from
// a /proc/mounts-formatted table (on hybrid hosts it is not
// /sys/fs/cgroup but e.g. /sys/fs/cgroup/unified).
func cgroup2Mount(mounts []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(mounts))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[2] == "cgroup2" {
			return unescapeMount(f[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mount table: %w", err)
	}
	return "", fmt.Errorf("no cgroup2 file system mounted: %w", ebpf.ErrNotSupported)
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 is a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unifiedCgroup returns the cgroup v2 path ("0::/path") of a
// /proc/PID/cgroup file.
func unifiedCgroup(procCgroup []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			if !strings.HasPrefix(p, "/") {
				return "", fmt.Errorf("cgroup v2 path %q is not absolute", p)
			}
			return p, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read process cgroups: %w", err)
	}
	return "", fmt.Errorf("process has no cgroup v2 entry: %w", ebpf.ErrNotSupported)
}

// openCgroup finds the cgroup to attach to. An explicit dir is used as is.
// Otherwise it is the process's own cgroup, unless that is the root: then a
// child cgroup named after the process is created and the process moves
// into it, since programs on the root cgroup would police every socket on
// the host, including another node's.
func openCgroup(dir string) (*cgroup, error) {
	if dir != "" {
		if err := checkCgroupDir(dir); err != nil {
			return nil, err
		}
		return &cgroup{path: dir}, nil
	}
	processChild.Lock()
	defer processChild.Unlock()
	if processChild.refs > 0 {
		processChild.refs++
		return &cgroup{path: processChild.path, created: true, parent: processChild.parent}, nil
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	mount, err := cgroup2Mount(mounts)
	if err != nil {
		return nil, err
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read process cgroups: %w", err)
	}
	rel, err := unifiedCgroup(own)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(mount, rel)
	if rel != "/" {
		if err := checkCgroupDir(path); err != nil {
			return nil, err
		}
		return &cgroup{path: path}, nil
	}

	child := filepath.Join(mount, fmt.Sprintf("starling-%d", os.Getpid()))
	if err := os.Mkdir(child, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create cgroup %s: %w", child, err)
	}
	if err := moveProcess(child); err != nil {
		// Best effort: the directory is empty, so it can go.
		_ = os.Remove(child)
		return nil, err
	}
	processChild.path, processChild.parent, processChild.refs = child, path, 1
	return &cgroup{path: child, created: true, parent: path}, nil
}

// checkCgroupDir reports whether dir looks like a cgroup v2 directory.
func checkCgroupDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return nil
}

// moveProcess moves the whole process (every thread) into the cgroup dir.
func moveProcess(dir string) error {
	pid := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0); err != nil {
		return fmt.Errorf("move process into cgroup %s: %w", dir, err)
	}
	return nil
}

// close undoes what openCgroup did: when the last Loader sharing the child
// cgroup closes, the process goes back to the parent and the child is
// removed. Sockets created in the child keep their cgroup
// alive in the kernel until they close; removing the directory is still
// allowed.
func (c *cgroup) close() error {
	if !c.created {
		return nil
	}
	processChild.Lock()
	defer processChild.Unlock()
	if processChild.refs--; processChild.refs > 0 {
		return nil // another Loader still polices the process's sockets
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return fmt.Errorf("read process cgroups: %w", err)
	}
	rel, err := unifiedCgroup(own)
	if err != nil {
		return err
	}
	var errs []error
	// Only move back if nobody moved the process elsewhere meanwhile.
	if filepath.Base(rel) == filepath.Base(c.path) {
		errs = append(errs, moveProcess(c.parent))
	}
	if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove cgroup %s: %w", c.path, err))
	}
	return errors.Join(errs...)
}
