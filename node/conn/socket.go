package conn

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is returned by a socket in non-blocking mode when no byte is ready. It is a temporary
// net.Error, which crypto/tls passes through without poisoning the TLS connection: that is what lets an
// idle TLS connection give its read buffer back and wait for readiness holding nothing.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "read would block" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// socket wraps a TCP connection so that reads can be tried without blocking and readiness can be awaited
// without a buffer. Everything but Read is the TCP connection's own.
type socket struct {
	*net.TCPConn
	rc       syscall.RawConn
	nonblock bool // set and read by the reader goroutine only
	// drained is set when the last read returned less than asked: the socket had nothing more then,
	// so the reader may park without a read that would only say EAGAIN. Arming the poller is level-
	// triggered, so bytes that arrive in between are reported at once.
	drained bool

	// State of the pre-made callbacks below: a closure built per call would escape to the heap through
	// syscall.RawConn and allocate on every read.
	rbuf   []byte
	rn     int
	rerr   error
	peek   [1]byte
	readFn func(fd uintptr) bool
	waitFn func(fd uintptr) bool
}

func newSocket(c *net.TCPConn) (*socket, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &socket{TCPConn: c, rc: rc}
	s.readFn = func(fd uintptr) bool {
		for {
			s.rn, s.rerr = unix.Read(int(fd), s.rbuf)
			if s.rerr != unix.EINTR {
				return true
			}
		}
	}
	s.waitFn = func(fd uintptr) bool {
		_, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.peek[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		// Anything but "nothing yet" (data, EOF, an error) ends the wait; the next read reports it.
		return e != unix.EAGAIN && e != unix.EINTR
	}
	return s, nil
}

// Read reads what is ready. In non-blocking mode it returns ErrWouldBlock instead of waiting.
func (s *socket) Read(p []byte) (int, error) {
	for {
		n, err := s.tryRead(p)
		if err != ErrWouldBlock {
			return n, err
		}
		if s.nonblock {
			return 0, ErrWouldBlock
		}
		if err := s.waitReadable(); err != nil {
			return 0, err
		}
	}
}

func (s *socket) tryRead(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf = p
	err := s.rc.Read(s.readFn)
	s.rbuf = nil
	if err != nil {
		return 0, mapNetErr(err)
	}
	switch {
	case s.rerr == unix.EAGAIN:
		return 0, ErrWouldBlock
	case s.rerr != nil:
		return 0, os.NewSyscallError("read", s.rerr)
	case s.rn == 0:
		return 0, io.EOF
	}
	s.drained = s.rn < len(p)
	return s.rn, nil
}

// waitReadable blocks until a byte, EOF or an error is ready, or the read deadline passes.
func (s *socket) waitReadable() error {
	return mapNetErr(s.rc.Read(s.waitFn))
}

func mapNetErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	if errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return err
}
