package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestBar(t *testing.T) {
	tests := []struct {
		total, add int64
		want       []string
	}{
		{100, 50, []string{"50/100 logins", "[===============               ]"}},
		{10, 25, []string{"25/10 logins", "[==============================]"}},
		{0, 7, []string{"7 logins"}},
	}
	for _, tt := range tests {
		var w syncBuf
		b := New(&w, "login", tt.total, "logins")
		var wg sync.WaitGroup
		for range tt.add {
			wg.Go(func() { b.Add(1) })
		}
		wg.Wait()
		b.Done()
		b.Done() // idempotent
		out := w.b.String()
		for _, s := range tt.want {
			if !strings.Contains(out, s) {
				t.Errorf("output %q lacks %q", out, s)
			}
		}
		if strings.Count(out, "\n") != 1 {
			t.Errorf("want exactly one final line on a non-terminal, got %q", out)
		}
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
