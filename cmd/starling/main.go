// Command starling runs and administers a Starling XMPP node.
//
//	starling run [--config FILE] [--throttle-userspace]  run the node
//	starling user add|passwd JID [--password P]  create an account, change its password (else read stdin)
//	starling user del JID                        delete an account with its roster and offline messages
//	starling user list [DOMAIN]                  list accounts
//	starling config check [FILE]                 parse a config, print warnings and errors
//	starling throttle status [--http ADDR]       live per-connection traffic counters of a running node
//	starling version                             print the version
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/starling-xmpp/starling/node"
	"github.com/starling-xmpp/starling/node/accounts"
	"github.com/starling-xmpp/starling/node/config"
	"github.com/starling-xmpp/starling/node/config/tdsl"
	"github.com/starling-xmpp/starling/node/memtune"
	"github.com/starling-xmpp/starling/node/storage/backend"
	"github.com/starling-xmpp/starling/node/throttle"
)

const usage = `starling: a clustered XMPP server

Usage:
  starling run [--config FILE] [--throttle-userspace]
                                                run the node (--throttle-userspace: count bytes
                                                in userspace even where eBPF can load)
  starling user add JID [--password P]          create an account (password read from stdin if not given)
  starling user passwd JID [--password P]       change an account's password
  starling user del JID                         delete an account, its roster and offline messages
  starling user list [DOMAIN]                   list accounts
  starling config check [FILE]                  check a configuration file
  starling throttle status [--http ADDR]        per-connection traffic counters of a running node
  starling version                              print the version
  starling help                                 this text

Every command that reads the configuration takes --config FILE; the default is $STARLING_CONFIG,
then /etc/starling/config.tdsl, then etc/starling.tdsl in the working directory.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "starling:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that does not parse; the usage text goes with it.
var errUsage = errors.New("bad usage (see 'starling help')")

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(stdout, "starling", version())
		return nil
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "user":
		if len(args) < 2 {
			return errUsage
		}
		return cmdUser(ctx, args[1], args[2:], stdin, stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			return errUsage
		}
		return cmdConfigCheck(args[2:], stdout, stderr)
	case "throttle":
		if len(args) < 2 || args[1] != "status" {
			return errUsage
		}
		return cmdThrottleStatus(ctx, args[2:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

func defaultConfigPath() string {
	if p := os.Getenv("STARLING_CONFIG"); p != "" {
		return p
	}
	for _, p := range []string{"/etc/starling/config.tdsl", "etc/starling.tdsl"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/etc/starling/config.tdsl"
}

func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, warnings, err := config.Load(path, tdsl.Options{Env: os.LookupEnv})
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		return nil, fmt.Errorf("%s", config.Caret(err))
	}
	return cfg, nil
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfigPath(), "configuration file")
	// For operators comparing the two meters, and for the harness's eBPF-cost scenario: the policy is
	// the same, only where bytes are counted changes.
	userspace := fs.Bool("throttle-userspace", false, "count bytes in userspace even where eBPF can load")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := loadConfig(*path, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	log.Info("configuration loaded", "file", *path)
	n, err := node.New(ctx, cfg, node.Options{Logger: log, Version: version(), ThrottleUserspace: *userspace})
	if err != nil {
		return err
	}
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	go memtune.Run(tctx, memtune.Options{Log: log}, os.Getenv("GOGC"))
	return n.Run(ctx)
}

func cmdConfigCheck(args []string, stdout, stderr io.Writer) error {
	path := defaultConfigPath()
	if len(args) > 0 {
		path = args[0]
	}
	cfg, warnings, err := config.Load(path, tdsl.Options{Env: os.LookupEnv})
	for _, w := range warnings {
		fmt.Fprintln(stdout, "warning:", w)
	}
	if err == nil {
		err = node.Check(cfg)
	}
	if err != nil {
		fmt.Fprintln(stdout, config.Caret(err))
		return fmt.Errorf("%s: configuration has errors", path)
	}
	fmt.Fprintf(stdout, "%s: OK (%d warnings); domains %v, data in %s, storage %s\n", path, len(warnings),
		cfg.VirtualHosts, cfg.DataDir, cfg.Database.Driver)
	return nil
}

func cmdUser(ctx context.Context, sub string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfigPath(), "configuration file")
	password := fs.String("password", "", "the password (read from stdin when not given)")
	// Flags may come before or after the JID.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	cfg, err := loadConfig(*path, stderr)
	if err != nil {
		return err
	}
	store, err := backend.Open(ctx, cfg.Database.URI, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	defer store.Close()
	acc := accounts.New(store, 0)
	if sub == "list" {
		domain := ""
		if len(pos) > 0 {
			domain = pos[0]
		}
		users, err := acc.List(ctx, domain)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		return nil
	}
	if len(pos) != 1 {
		return fmt.Errorf("user %s takes one JID: %w", sub, errUsage)
	}
	j, err := accounts.ParseAccount(pos[0])
	if err != nil {
		return err
	}
	switch sub {
	case "add", "passwd":
		pw := *password
		if pw == "" {
			if pw, err = readPassword(stdin); err != nil {
				return err
			}
		}
		if sub == "add" {
			err = acc.Create(ctx, j, pw)
		} else {
			err = acc.SetPassword(ctx, j, pw)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s\n", j, map[string]string{"add": "created", "passwd": "password changed"}[sub])
		return nil
	case "del":
		if err := acc.Delete(ctx, j); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: deleted\n", j)
		return nil
	}
	return fmt.Errorf("unknown user command %q: %w", sub, errUsage)
}

func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}

func cmdThrottleStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("throttle status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfigPath(), "configuration file (to find the node's HTTP listener)")
	addr := fs.String("http", "", "the node's HTTP address, host:port (default: from the configuration)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *addr == "" {
		cfg, err := loadConfig(*path, stderr)
		if err != nil {
			return err
		}
		if !cfg.HTTP.Enabled {
			return fmt.Errorf("%s has no HTTP listener (http () { port = 5280 }); the live view is served there", *path)
		}
		a := cfg.HTTP.Addrs()[0]
		if strings.HasPrefix(a, ":") {
			a = "127.0.0.1" + a
		}
		*addr = a
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+*addr+"/throttle", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("ask the node at %s: %w", *addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the node at %s answered %s", *addr, resp.Status)
	}
	var st throttle.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("read the node's answer: %w", err)
	}
	printThrottleStatus(stdout, st)
	return nil
}

func printThrottleStatus(w io.Writer, st throttle.Status) {
	fmt.Fprintf(w, "mode: %s (window %s)", st.Mode, st.Window)
	if st.Reason != "" {
		fmt.Fprintf(w, "; %s", st.Reason)
	}
	fmt.Fprintf(w, "\n%d policed connections\n", len(st.Conns))
	if len(st.Conns) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "listener\tport\tpeer\tin/window\tin/total\tout/window\tout/total\tstanzas/window\tstanzas/total\tdropped\tstate\t")
	for _, c := range st.Conns {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", c.Listener, c.Port, c.Remote,
			c.In.WindowBytes, c.In.TotalBytes, c.Out.WindowBytes, c.Out.TotalBytes,
			c.Stanzas.Window, c.Stanzas.Total, c.In.Dropped+c.Out.Dropped+c.Stanzas.Dropped, c.State)
	}
	tw.Flush()
}
