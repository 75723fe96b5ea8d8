package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/starling-xmpp/starling/perf/hist"
	"github.com/starling-xmpp/starling/perf/xmppclient"
)

// Login measures complete logins per second: connect, (TLS), SASL, bind,
// close. Accounts are logged in once before the window so SCRAM's salted
// passwords are cached and the generator only pays an HMAC chain per login.
type Login struct {
	Mechanism   string
	Security    xmppclient.Security
	Concurrency int           // logins in flight
	Users       int           // distinct accounts cycled through
	Count       int           // logins to measure (an upper bound)
	Duration    time.Duration // time bound of the window
	// SourceIPs spreads connections over loopback addresses so that
	// short-lived connections never exhaust one address's ports.
	SourceIPs []string
}

// Name implements Scenario.
func (l *Login) Name() string { return "login" }

// Variant implements Scenario.
func (l *Login) Variant() string {
	return fmt.Sprintf("%s/%v c=%d", l.Mechanism, l.Security, l.Concurrency)
}

// Accounts implements Scenario.
func (l *Login) Accounts() int { return l.Users }

// Run implements Scenario.
func (l *Login) Run(ctx context.Context, t Target, env Env) (Result, error) {
	res := Result{Scenario: l.Name(), Variant: l.Variant(), Target: t.Name, Metrics: map[string]float64{}}
	if l.Concurrency < 1 || l.Users < l.Concurrency || l.Count < 1 || l.Duration <= 0 {
		return res, fmt.Errorf("login: need concurrency >= 1, users >= concurrency, count >= 1, duration > 0 (got %d/%d/%d/%v)", l.Concurrency, l.Users, l.Count, l.Duration)
	}
	if len(env.Accounts) < l.Users {
		return res, fmt.Errorf("login: %d accounts needed, %d created", l.Users, len(env.Accounts))
	}
	addr, err := t.Nodes[0].Addr(l.Security)
	if err != nil {
		return res, err
	}
	accts := env.Accounts[:l.Users]
	login := func(ctx context.Context, i, worker int) error {
		cfg := xmppclient.Config{Addr: addr, Domain: t.Domain, User: accts[i].User, Password: accts[i].Password,
			Resource: fmt.Sprintf("w%d", worker), Security: l.Security, Mechanism: l.Mechanism, Cache: env.Cache}
		if len(l.SourceIPs) > 0 {
			cfg.LocalAddr = l.SourceIPs[worker%len(l.SourceIPs)]
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		c, err := xmppclient.Dial(dctx, cfg)
		if err != nil {
			return err
		}
		return c.Close()
	}

	// Warm-up: every account once, to fill the salt cache (not measured).
	warm := env.bar(fmt.Sprintf("%s login warm-up", t.Name), int64(l.Users), "logins")
	var werr error
	var wmu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range l.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= l.Users || ctx.Err() != nil {
					return
				}
				if err := login(ctx, i, w); err != nil {
					wmu.Lock()
					werr = errors.Join(werr, err)
					wmu.Unlock()
					return
				}
				warm.Add(1)
			}
		})
	}
	wg.Wait()
	warm.Done()
	if werr != nil {
		var unsup *xmppclient.UnsupportedError
		if errors.As(werr, &unsup) {
			res.Error = unsup.Error()
			return res, nil
		}
		return res, fmt.Errorf("login warm-up: %w", werr)
	}

	bar := env.bar(fmt.Sprintf("%s login %s", t.Name, l.Variant()), int64(l.Count), "logins")
	defer bar.Done()
	m := newMeter(t, nil)
	wctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	windowEnd, _ := wctx.Deadline()
	var done, failed atomic.Int64
	var sample atomic.Pointer[string]
	hs := make([]hist.Histogram, l.Concurrency)
	next.Store(0)
	m.begin()
	for w := range l.Concurrency {
		wg.Go(func() {
			// Worker w uses accounts w, w+c, w+2c...: one login per account at a time.
			for k := w; wctx.Err() == nil; k += l.Concurrency {
				if next.Add(1) > int64(l.Count) {
					return
				}
				start := time.Now()
				err := login(wctx, k%l.Users, w)
				switch {
				case err == nil:
					hs[w].RecordDuration(time.Since(start))
					done.Add(1)
					bar.Add(1)
				case wctx.Err() != nil || !time.Now().Before(windowEnd):
					// The window closed mid-login: neither success nor failure.
					// (The socket deadline can fire before the context's timer.)
					return
				default:
					failed.Add(1)
					msg := err.Error()
					sample.CompareAndSwap(nil, &msg)
					var ne net.Error
					if errors.As(err, &ne) && !ne.Timeout() {
						// A refused connection: back off a little instead of spinning.
						waitCtx(wctx, 10*time.Millisecond)
					}
				}
			}
		})
	}
	wg.Wait()
	m.end(&res)
	var h hist.Histogram
	for i := range hs {
		h.Merge(&hs[i])
	}
	res.Errors = failed.Load()
	if p := sample.Load(); p != nil {
		res.ErrorSample = *p
	}
	n := float64(done.Load())
	res.Metrics["logins"] = n
	res.Metrics["logins_per_s"] = n / res.Seconds
	res.Metrics["p50_ms"] = ms(h.Quantile(0.5))
	res.Metrics["p99_ms"] = ms(h.Quantile(0.99))
	if n > 0 {
		res.Metrics["server_cpu_us_per_login"] = res.ServerCPU * 1e6 / n
		res.Metrics["generator_cpu_us_per_login"] = res.GeneratorCPU * 1e6 / n
	}
	if n == 0 {
		return res, fmt.Errorf("login: no login succeeded (%d failed)", res.Errors)
	}
	return res, nil
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }
