package conn

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Poller watches parked connections with an epoll set of its own, so that an idle connection needs no
// goroutine: Go's runtime poller can only wake a goroutine that is already waiting, and a waiting
// goroutine is a 4–8 KiB stack per idle client. One goroutine (in a blocking epoll_wait) serves them all.
//
// A sweep every tick asks the owners of connections parked longer than their silence period what to do
// (ping, or close): one ticker for all instead of a timer per connection.
//
// Registrations are one-shot: a readiness report disarms the connection until it parks again, so a
// connection is never woken twice, and re-arming a connection that has data reports it at once.
type Poller struct {
	epfd   int
	stopfd int // an eventfd that ends the wait loop
	nextID atomic.Uint64

	mu    sync.Mutex
	conns map[uint64]*Conn
	done  chan struct{}
	stop  chan struct{}
	tick  time.Duration

	// work hands jobs to idle workers; idle counts them.
	work chan job
	idle atomic.Int32
}

// maxIdleWorkers bounds the goroutines kept for wake-ups and flushes; a burst beyond them gets fresh
// goroutines, which exit when they find no work.
const (
	maxIdleWorkers = 64
	workerLinger   = 10 * time.Second
)

// run runs j on an idle worker, or on a new goroutine that stays on as a worker.
func (p *Poller) run(j job) {
	select {
	case p.work <- j:
	default:
		go p.worker(j)
	}
}

func (p *Poller) worker(j job) {
	t := time.NewTimer(workerLinger)
	defer t.Stop()
	for {
		j.do()
		if p.idle.Add(1) > maxIdleWorkers {
			p.idle.Add(-1)
			return
		}
		t.Reset(workerLinger)
		select {
		case j = <-p.work:
			p.idle.Add(-1)
		case <-t.C:
			p.idle.Add(-1)
			return
		case <-p.stop:
			p.idle.Add(-1)
			return
		}
	}
}

// NewPoller starts a poller whose silence sweep runs every tick (0 means a second; silence periods are
// then honoured within a second). Close it when the listener it serves is gone.
func NewPoller(tick time.Duration) (*Poller, error) {
	if tick <= 0 {
		tick = time.Second
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("conn: epoll_create1: %w", err)
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("conn: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stopfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stopfd)
		return nil, fmt.Errorf("conn: epoll_ctl stop fd: %w", err)
	}
	p := &Poller{epfd: epfd, stopfd: stopfd, conns: make(map[uint64]*Conn), done: make(chan struct{}),
		stop: make(chan struct{}), tick: tick, work: make(chan job)}
	p.nextID.Store(1) // 0 marks the stop eventfd
	go p.wait()
	go p.sweep()
	return p, nil
}

// sweep hands connections silent for too long to their owners.
func (p *Poller) sweep() {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	var list []*Conn
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			list = list[:0]
			p.mu.Lock()
			for _, c := range p.conns {
				list = append(list, c)
			}
			p.mu.Unlock()
			ns := now.UnixNano()
			for i, c := range list {
				if c.silentSince(ns) {
					p.run(job{c: c, kind: jobSilence})
				}
				list[i] = nil
			}
		}
	}
}

func (p *Poller) wait() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := 0; i < n; i++ {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 {
				return
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

// arm registers (or re-arms) a parked connection for one readiness report. It runs epoll_ctl inside
// the socket's Control, which holds the descriptor open: a closed socket's number can be reused by a
// new connection at any time, and must never be (re)armed on behalf of the old one.
func (p *Poller) arm(c *Conn) error {
	c.pmu.Lock()
	if c.pollID == 0 {
		c.pollID = p.nextID.Add(1)
		p.mu.Lock()
		p.conns[c.pollID] = c
		p.mu.Unlock()
	}
	id, op := c.pollID, unix.EPOLL_CTL_MOD
	if !c.armed {
		op = unix.EPOLL_CTL_ADD
		c.armed = true
	}
	c.pmu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var ctlErr error
	err := c.sock.rc.Control(func(fd uintptr) {
		ctlErr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err // the socket is closed
	}
	return ctlErr
}

// forget drops a connection that ended. The kernel removes its registration when the socket closes.
func (p *Poller) forget(c *Conn) {
	c.pmu.Lock()
	id := c.pollID
	c.pmu.Unlock()
	if id == 0 {
		return
	}
	p.mu.Lock()
	delete(p.conns, id)
	p.mu.Unlock()
	c.sock.rc.Control(func(fd uintptr) { unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
}

// Parked counts the connections the poller knows.
func (p *Poller) Parked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops the poller. Connections still parked stay parked until they close.
func (p *Poller) Close() error {
	var one = [8]byte{1}
	if _, err := unix.Write(p.stopfd, one[:]); err != nil {
		return fmt.Errorf("conn: stop poller: %w", err)
	}
	<-p.done
	close(p.stop)
	unix.Close(p.stopfd)
	return unix.Close(p.epfd)
}
