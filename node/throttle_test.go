package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/starling-xmpp/starling/node/config"
	"github.com/starling-xmpp/starling/node/internal/xmpptest"
	"github.com/starling-xmpp/starling/node/throttle"
	"github.com/starling-xmpp/starling/xmpp/xml"
)

// throttleModes runs f in userspace mode, and in eBPF mode where this process may load programs (root;
// in CI it must).
func throttleModes(t *testing.T, f func(t *testing.T, userspace bool)) {
	t.Run("userspace", func(t *testing.T) { f(t, true) })
	t.Run("ebpf", func(t *testing.T) {
		if os.Geteuid() != 0 {
			if os.Getenv("STARLING_CI") != "" {
				t.Fatal("CI runs as root and must exercise the eBPF meter")
			}
			t.Skip("eBPF throttling needs root (CAP_BPF, CAP_NET_ADMIN, cgroup v2): run as root")
		}
		f(t, false)
	})
}

func metricsText(t *testing.T, tn *testNode) string {
	t.Helper()
	resp, err := http.Get("http://" + tn.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestThrottleBinDisc is the end-to-end check: a client link with bin:64k:0:disc is told
// <policy-violation/> after sending more than 64 KiB in a minute, and the metrics show it.
func TestThrottleBinDisc(t *testing.T) {
	throttleModes(t, func(t *testing.T, userspace bool) {
		tn := startNodeOpts(t, func(c *config.Config) {
			c.TrafficThrottling = config.Setting{Value: "bin:64k:0:disc"}
		}, Options{ThrottleUserspace: userspace})
		wantMode := map[bool]string{true: "userspace", false: "ebpf"}[userspace]
		if tn.Throttle().Mode() != wantMode {
			t.Fatalf("mode %s, want %s", tn.Throttle().Mode(), wantMode)
		}
		tn.addUser(t, "alice@example.test", "secret-alice")
		var cond string
		if userspace {
			cond = floodClient(t, tn.plain)
		} else {
			// The node's process sits in the cgroup the programs police, and the policy also matches
			// the remote port (for links the node dials), so an in-process client would be policed
			// too and fenced first. The client runs as its own process in the root cgroup instead.
			cond = floodClientProcess(t, tn.plain)
		}
		if cond != "policy-violation" {
			t.Fatalf("stream ended with %q, want policy-violation", cond)
		}
		m := metricsText(t, tn)
		for _, want := range []string{
			`starling_throttle_mode{mode="` + wantMode + `"} 1`,
			`starling_throttle_limit_events_total{action="disc",type="bin"} 1`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// floodClient logs alice in and sends 80 KiB of whitespace (legal keepalive traffic: bytes that count
// and route nowhere), then returns the stream error condition that ended the stream.
func floodClient(t testing.TB, addr string) string {
	a := xmpptest.Dial(t, addr, xmpptest.Options{Domain: "example.test", User: "alice", Password: "secret-alice", Resource: "r"})
	chunk := []byte(strings.Repeat(" ", 4096))
	for i := 0; i < 20; i++ {
		a.Conn().SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := a.Conn().Write(chunk); err != nil {
			break // the node may already have closed
		}
	}
	cond, _ := a.WaitClosed(context.Background())
	return cond
}

// TestThrottleClientProcess is the client half of TestThrottleBinDisc/ebpf, run in a child process.
func TestThrottleClientProcess(t *testing.T) {
	addr := os.Getenv("STARLING_THROTTLE_CLIENT")
	if addr == "" {
		t.Skip("the client process of TestThrottleBinDisc/ebpf; runs only when that test starts it")
	}
	fmt.Printf("CONDITION=%s\n", floodClient(t, addr))
}

func floodClientProcess(t *testing.T, addr string) string {
	procs, err := rootCgroupProcs()
	if err != nil {
		t.Fatal(err)
	}
	// The shell moves itself to the root cgroup before it becomes the client.
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1" && exec "$2" -test.run='^TestThrottleClientProcess$' -test.v`, "sh", procs, os.Args[0])
	cmd.Env = append(os.Environ(), "STARLING_THROTTLE_CLIENT="+addr)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("client process ran %v", time.Since(began))
	if err != nil {
		t.Fatalf("client process: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "CONDITION="); ok {
			return v
		}
	}
	t.Fatalf("client process said nothing:\n%s", out)
	return ""
}

// rootCgroupProcs finds the cgroup v2 root's cgroup.procs.
func rootCgroupProcs() (string, error) {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "cgroup2" {
			return filepath.Join(f[1], "cgroup.procs"), nil
		}
	}
	return "", errors.New("no cgroup2 mount in /proc/mounts")
}

// TestThrottleXMPPLimits checks stanza counting: drop discards what is over the limit and keeps the
// session, disc ends it.
func TestThrottleXMPPLimits(t *testing.T) {
	tn := startNodeOpts(t, func(c *config.Config) {
		c.TrafficThrottling = config.Setting{Value: "xmpp:20:0:drop"}
	}, Options{ThrottleUserspace: true, ThrottleWindow: time.Hour})
	tn.addUser(t, "alice@example.test", "secret-alice")
	a := tn.login(t, "alice", "r") // the login used a few of the 20
	for i := 0; i < 40; i++ {
		a.Send("<iq type='get' id='p%d' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>", i)
	}
	a.SendRaw("<iq type='get' id='last' to='example.test'><ping xmlns='urn:xmpp:ping'/></iq>")
	// Answers come for the first stanzas only; the session stays up. Read what comes within a second.
	got := 0
	until := time.Now().Add(time.Second)
	for {
		e, err := a.NextBefore(until)
		if err != nil {
			break
		}
		if string(e.Attr("id")) == "last" {
			t.Fatal("a stanza over the drop limit was processed")
		}
		if strings.HasPrefix(string(e.Attr("id")), "p") {
			got++
		}
	}
	if got >= 40 || got == 0 {
		t.Fatalf("%d of 40 answered", got)
	}
	st := throttleStatus(t, tn)
	if st.Mode != "userspace" || len(st.Conns) != 1 || st.Conns[0].Stanzas.Dropped == 0 || st.Conns[0].In.TotalBytes == 0 {
		t.Fatalf("status %+v", st)
	}

	tn2 := startNodeOpts(t, func(c *config.Config) {
		c.TrafficThrottling = config.Setting{Value: "xmpp:15:0:disc"}
	}, Options{ThrottleUserspace: true, ThrottleWindow: time.Hour})
	tn2.addUser(t, "bob@example.test", "secret-bob")
	b := tn2.login(t, "bob", "r")
	for i := 0; i < 30; i++ {
		b.Send("<presence/>")
	}
	if cond, _ := b.WaitClosed(context.Background()); cond != "policy-violation" {
		t.Fatalf("stream ended with %q", cond)
	}
	if m := metricsText(t, tn2); !strings.Contains(m, `starling_throttle_limit_events_total{action="disc",type="xmpp"} 1`) {
		t.Fatal("xmpp disc not counted")
	}
}

func TestThrottleBadSetting(t *testing.T) {
	cfg, _, err := config.Parse("t.tdsl", []byte("'data-dir' = '"+t.TempDir()+"'\n'cm-traffic-throttling' = 'xmpp:25k:0:disc,bin:2x:0:disc'\n"), tdslOpts())
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg, Options{ThrottleUserspace: true})
	if err == nil || !strings.HasPrefix(err.Error(), "t.tdsl:2:") {
		t.Fatalf("error %v, want one at t.tdsl:2", err)
	}
}

// TestThrottleBinDropLosesNothing: over a bin drop limit the node pauses the connection until the
// window ends, and every stanza still arrives, in order.
func TestThrottleBinDropLosesNothing(t *testing.T) {
	tn := startNodeOpts(t, func(c *config.Config) {
		c.TrafficThrottling = config.Setting{Value: "bin:16k:0:drop"}
	}, Options{ThrottleUserspace: true, ThrottleWindow: time.Second})
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.addUser(t, "bob@example.test", "secret-bob")
	a := tn.login(t, "alice", "a")
	b := tn.login(t, "bob", "b")
	body := strings.Repeat("x", 1000)
	// 80 KB: even at the 1.5× hard ceiling (24 KB a window) that takes four windows, so at least
	// one whole window of pausing.
	const n = 80
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			a.Send("<message to='bob@example.test/b' id='m%d'><body>%s</body></message>", i, body)
		}
	}()
	for i := 0; i < n; i++ {
		m := b.Expect("message", func(e *xml.Element) bool { return string(e.Name()) == "message" })
		if id := string(m.Attr("id")); id != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d arrived as %s", i, id)
		}
	}
	if time.Since(start) < time.Second {
		t.Fatalf("80 KB passed a 16 KB-per-second drop limit in %v: nothing was paused", time.Since(start))
	}
	if m := metricsText(t, tn); !strings.Contains(m, `starling_throttle_limit_events_total{action="drop",type="bin"}`) {
		t.Fatal("no drop event counted")
	}
}

// TestUnpoliced: 'none' leaves client connections out of the meter.
func TestUnpoliced(t *testing.T) {
	tn := startNodeOpts(t, func(c *config.Config) {
		c.TrafficThrottling = config.Setting{Value: "none"}
	}, Options{ThrottleUserspace: true})
	tn.addUser(t, "alice@example.test", "secret-alice")
	tn.login(t, "alice", "r")
	st := throttleStatus(t, tn)
	if len(st.Conns) != 0 {
		t.Fatalf("an unpoliced listener's connection is metered: %+v", st.Conns)
	}
}

// throttleStatus reads the node's live traffic view (GET /throttle).
func throttleStatus(t *testing.T, tn *testNode) throttle.Status {
	t.Helper()
	resp, err := http.Get("http://" + tn.http + "/throttle")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st throttle.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /throttle: %v", err)
	}
	return st
}
