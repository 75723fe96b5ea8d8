// Command starling-bench measures Starling side by side with ejabberd and
// Prosody on this machine: login rate, one-to-one message throughput,
// latency percentiles at a fixed rate, and memory per idle session. It runs
// private instances of each server on loopback, writes JSON results, a
// markdown report and PNG plots, and leaves nothing running.
//
// Usage:
//
//	starling-bench run [-plan quick|full|ci] [-servers starling,ejabberd,prosody] [-groups G,...] [-out perf/results] [-readme perf/README.md]
//	starling-bench report -in perf/results/latest.json [-out perf/results] [-readme perf/README.md]
//
// The ebpf-cost group (full and ci plans) runs the same scenarios against
// Starling metered by eBPF, in userspace, and not at all.
//
// The logic lives in perf/bench, perf/load, perf/peer and perf/report.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/starling-xmpp/starling/perf/bench"
	"github.com/starling-xmpp/starling/perf/load"
	"github.com/starling-xmpp/starling/perf/report"
)

const usage = `starling-bench: Starling, ejabberd and Prosody measured side by side

Usage:
  starling-bench run [flags]       run a plan and write results, report and plots
  starling-bench report [flags]    render the report and plots again from a results file
  starling-bench help              this text

Run 'starling-bench run -h' for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "starling-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stderr)
	case "hold":
		// Internal: a helper process that holds idle sessions (see load.ProcessHolders).
		return load.ServeHolder(ctx, os.Stdin, os.Stdout)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plan := fs.String("plan", "quick", "plan to run: "+strings.Join(bench.PlanNames(), ", "))
	groups := fs.String("groups", "", "run only these groups of the plan, comma-separated (default all; e.g. latency, ebpf-cost)")
	servers := fs.String("servers", strings.Join(bench.ServerNames, ","), "servers to measure, comma-separated")
	dir := fs.String("dir", "/tmp/starling-bench", "state of the private server instances (accounts are kept between runs)")
	out := fs.String("out", "perf/results", "where results, report and plots go")
	readme := fs.String("readme", "perf/README.md", "README whose results section is replaced (empty: none)")
	repo := fs.String("repo", ".", "repository root to build Starling from")
	bin := fs.String("starling-bin", "", "prebuilt starling binary (default: build ./cmd/starling)")
	rev := fs.String("starling-rev", "HEAD", "git revision of Starling to build; empty builds the working tree as it is")
	pacing := fs.String("pacing", "thread", "how the latency scenario's sender waits for each send time: thread (one sender on its own thread, exact sleeps), spin (one sender, Go timer then yield), timers (a Go timer per pair, the old generator)")
	verbose := fs.Bool("v", false, "log every step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := bench.ByName(*plan)
	if err != nil {
		return err
	}
	pace, err := load.ParsePacing(*pacing)
	if err != nil {
		return err
	}
	for _, g := range p.Groups {
		for _, sc := range g.Scenarios {
			if l, ok := sc.(*load.Latency); ok {
				l.Pacing = pace
			}
		}
	}
	level := slog.LevelInfo
	if !*verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable for holder processes: %w", err)
	}
	absRepo, _ := filepath.Abs(*repo)
	cfg := bench.Config{
		Plan: p, Servers: strings.Split(*servers, ","), Groups: splitList(*groups), Dir: *dir, Repo: absRepo, StarlingBinary: *bin, StarlingRev: *rev,
		Holder: load.ProcessHolders(exe, "hold"), Log: log, Progress: stderr,
		Command: "starling-bench run " + strings.Join(args, " "),
	}
	r, runErr := bench.Execute(ctx, cfg)
	// Whatever was measured is written, even after a failure or Ctrl-C.
	files, err := report.Write(*out, *readme, r)
	if err != nil {
		return errors.Join(runErr, err)
	}
	for _, f := range files {
		fmt.Fprintln(stderr, "wrote", f)
	}
	// The JSON results at the end, for scripts; the bars went to stderr.
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		return runErr
	}
	return report.Failed(r)
}

func cmdReport(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "perf/results/latest.json", "results file")
	out := fs.String("out", "perf/results", "where report and plots go")
	readme := fs.String("readme", "perf/README.md", "README whose results section is replaced (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var r bench.Run
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("parse %s: %w", *in, err)
	}
	_, err = report.Write(*out, *readme, &r)
	return err
}

// splitList splits a comma-separated flag; empty gives nil.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
