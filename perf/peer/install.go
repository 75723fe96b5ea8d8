package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// policyRC is the Debian hook consulted by maintainer scripts before they
// start a service; exit code 101 means "do not start anything".
const policyRC = "/usr/sbin/policy-rc.d"

// Installed reports whether a Debian package is installed.
func Installed(ctx context.Context, pkg string) bool {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && bytes.Contains(out, []byte("install ok installed"))
}

// PackageVersion returns the installed version of a Debian package.
func PackageVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// EnsurePackages installs the missing packages with apt-get. Debian's
// ejabberd and prosody start system services on install (ports 5222, 5269,
// 5280), so a policy-rc.d that exits 101 is put in place for the install and
// removed again afterwards (an existing one that already forbids starts is
// left alone).
func EnsurePackages(ctx context.Context, log *slog.Logger, pkgs ...string) error {
	var missing []string
	for _, p := range pkgs {
		if !Installed(ctx, p) {
			missing = append(missing, p)
		}
	}
	if err := ctx.Err(); err != nil {
		return err // a cancelled query is not a missing package
	}
	if len(missing) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("packages %v are missing and installing needs root", missing)
	}
	restore, err := guardServices(policyRC)
	if err != nil {
		return err
	}
	defer restore()
	log.Info("installing packages", "packages", missing)
	args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", args[0], err, tail(out, 800))
		}
		return nil
	}
	if err := run(args...); err != nil {
		// A fresh machine has no package lists yet: update once and retry.
		if uerr := run("update", "-q"); uerr != nil {
			return errors.Join(err, uerr)
		}
		if err := run(args...); err != nil {
			return err
		}
	}
	return nil
}

// guardServices makes sure policy-rc.d forbids service starts and returns
// a function that puts the previous state back.
func guardServices(policyRC string) (func(), error) {
	old, err := os.ReadFile(policyRC)
	switch {
	case err == nil && bytes.Contains(old, []byte("exit 101")):
		return func() {}, nil
	case err == nil:
		if err := os.WriteFile(policyRC, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return nil, fmt.Errorf("replace %s: %w", policyRC, err)
		}
		return func() { os.WriteFile(policyRC, old, 0o755) }, nil
	case errors.Is(err, os.ErrNotExist):
		if err := os.WriteFile(policyRC, []byte("#!/bin/sh\n# starling-bench: no service starts during its apt-get install\nexit 101\n"), 0o755); err != nil {
			return nil, fmt.Errorf("write %s: %w", policyRC, err)
		}
		return func() { os.Remove(policyRC) }, nil
	default:
		return nil, fmt.Errorf("read %s: %w", policyRC, err)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
