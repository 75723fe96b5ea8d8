package node

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireTool skips (or, in CI where STARLING_CI is set, fails) when a test dependency is missing.
func requireTool(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("STARLING_CI") != "" {
		t.Fatalf("%s is missing; CI installs it with .ci/deps.sh", what)
	}
	t.Skipf("%s is missing (run make deps as root to install it)", what)
}

// TestInteropSlixmpp drives the node with slixmpp, an independent client library: SCRAM-SHA-256 over
// STARTTLS, roster add and push, a full subscription, messages both ways, offline delivery, disco,
// ping, software version and message carbons.
func TestInteropSlixmpp(t *testing.T) {
	err := exec.Command("/usr/bin/python3", "-c", "import slixmpp").Run()
	requireTool(t, err == nil, "python3-slixmpp (Debian's, under /usr/bin/python3)")
	tn := startNode(t, nil)
	tn.addUser(t, "alice@example.test", "alice-pw")
	tn.addUser(t, "bob@example.test", "bob-pw")
	host, port, _ := net.SplitHostPort(tn.plain)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"testdata/interop/slixmpp_client.py", "--host", host, "--port", port, "--domain", "example.test"}
	if testing.Verbose() && os.Getenv("STARLING_INTEROP_DEBUG") != "" {
		args = append(args, "-v")
	}
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		t.Log(line)
	}
	if runErr != nil {
		t.Fatalf("slixmpp scenarios failed: %v", runErr)
	}
	// The server's own view: both logins used SCRAM-SHA-256.
	resp, err := http.Get("http://" + tn.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `starling_c2s_authentications_total{mechanism="SCRAM-SHA-256",outcome="success"} 5`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %q", want)
	}
}
