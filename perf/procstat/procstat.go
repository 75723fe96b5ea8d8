// Package procstat reads a process tree's CPU time and resident memory from
// /proc, so that a server's cost is measured the same way whatever language
// it is written in (ejabberd's BEAM, Prosody's Lua, Starling's Go).
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Usage is a snapshot of a process and its descendants.
type Usage struct {
	CPU   time.Duration // user + system time, all threads, all processes
	RSS   int64         // resident set size in bytes, summed
	Procs int           // processes counted
}

// Sub returns the CPU time used between two snapshots; RSS is u's.
func (u Usage) Sub(before Usage) Usage {
	return Usage{CPU: u.CPU - before.CPU, RSS: u.RSS, Procs: u.Procs}
}

// Reader reads /proc (or another mount for tests).
type Reader struct {
	Root string // "/proc" when empty
	// TicksPerSecond converts utime/stime; Linux reports USER_HZ, 100 on
	// every architecture Go supports.
	TicksPerSecond int64
}

func (r Reader) root() string {
	if r.Root == "" {
		return "/proc"
	}
	return r.Root
}

func (r Reader) hz() int64 {
	if r.TicksPerSecond == 0 {
		return 100
	}
	return r.TicksPerSecond
}

// Tree returns the usage of pid and of every descendant alive now.
func (r Reader) Tree(pid int) (Usage, error) {
	pids, err := r.descendants(pid)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for i, p := range pids {
		one, err := r.Process(p)
		if err != nil {
			if i == 0 {
				return Usage{}, err
			}
			continue // a child that exited meanwhile
		}
		u.CPU += one.CPU
		u.RSS += one.RSS
		u.Procs++
	}
	return u, nil
}

// Process returns the usage of one process.
func (r Reader) Process(pid int) (Usage, error) {
	dir := filepath.Join(r.root(), strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Usage{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	f, err := statFields(stat)
	if err != nil {
		return Usage{}, fmt.Errorf("parse stat of %d: %w", pid, err)
	}
	// Fields after the command: state(3) ppid(4) ... utime(14) stime(15) ... rss(24)
	ut, err1 := strconv.ParseInt(string(f[14-3]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[15-3]), 10, 64)
	if err1 != nil || err2 != nil {
		return Usage{}, fmt.Errorf("parse CPU times of %d: %q %q", pid, f[14-3], f[15-3])
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return Usage{}, fmt.Errorf("read status of %d: %w", pid, err)
	}
	rss, err := vmRSS(status)
	if err != nil {
		return Usage{}, fmt.Errorf("status of %d: %w", pid, err)
	}
	cpu := time.Duration((ut + st) * int64(time.Second) / r.hz())
	return Usage{CPU: cpu, RSS: rss, Procs: 1}, nil
}

// statFields returns the fields of /proc/PID/stat that follow "(comm)",
// starting with the state; comm may itself hold spaces and parentheses.
func statFields(stat []byte) ([][]byte, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, fmt.Errorf("no command in %.60q", stat)
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 22 {
		return nil, fmt.Errorf("only %d fields", len(f))
	}
	return f, nil
}

func vmRSS(status []byte) (int64, error) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) != 2 || string(f[1]) != "kB" {
				return 0, fmt.Errorf("bad VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bad VmRSS %q: %w", line, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS (a zombie?)")
}

// descendants returns pid followed by all its descendants.
func (r Reader) descendants(pid int) ([]int, error) {
	ents, err := os.ReadDir(r.root())
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(r.root(), e.Name(), "stat"))
		if err != nil {
			continue
		}
		f, err := statFields(stat)
		if err != nil {
			continue
		}
		pp, err := strconv.Atoi(string(f[1]))
		if err != nil {
			continue
		}
		children[pp] = append(children[pp], p)
	}
	out := []int{pid}
	for i := 0; i < len(out) && i < 100000; i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}
