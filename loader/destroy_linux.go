package loader

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// inetDiagNoCookie is INET_DIAG_NOCOOKIE.
const inetDiagNoCookie = ^uint32(0)

// sockDestroyRequest builds a netlink SOCK_DESTROY message for the TCP
// socket local-remote. The cookie makes the kernel refuse (ESTALE) a
// different socket that reused the same addresses since.
func sockDestroyRequest(local, remote netip.AddrPort, cookie uint64, seq uint32) ([]byte, error) {
	family := uint8(unix.AF_INET)
	if !local.Addr().Unmap().Is4() {
		family = unix.AF_INET6
	}
	if local.Addr().Unmap().Is4() != remote.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("address families of %v and %v differ", local, remote)
	}
	const (
		hdrLen = unix.SizeofNlMsghdr
		reqLen = 56 // struct inet_diag_req_v2
	)
	b := make([]byte, hdrLen+reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DESTROY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(b[8:], seq)
	r := b[hdrLen:]
	r[0] = family
	r[1] = unix.IPPROTO_TCP
	ne.PutUint32(r[4:], ^uint32(0)) // every TCP state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], local.Port())
	binary.BigEndian.PutUint16(id[2:], remote.Port())
	putAddr := func(dst []byte, a netip.Addr) {
		if family == unix.AF_INET {
			v4 := a.Unmap().As4()
			copy(dst, v4[:])
			return
		}
		v6 := a.As16()
		copy(dst, v6[:])
	}
	putAddr(id[4:20], local.Addr())
	putAddr(id[20:36], remote.Addr())
	// idiag_if stays 0: link-local peers are not expected on links.
	ne.PutUint32(id[40:], uint32(cookie))
	ne.PutUint32(id[44:], uint32(cookie>>32))
	return b, nil
}

// destroySocket kills a TCP socket through netlink SOCK_DESTROY
// (CONFIG_INET_DIAG_DESTROY, CAP_NET_ADMIN).
func destroySocket(local, remote netip.AddrPort, cookie uint64) error {
	req, err := sockDestroyRequest(local, remote, cookie, 1)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send SOCK_DESTROY: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("read SOCK_DESTROY answer: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return fmt.Errorf("parse SOCK_DESTROY answer: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
			continue
		}
		if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
			return fmt.Errorf("SOCK_DESTROY: %w", syscall.Errno(-code))
		}
		return nil
	}
	return fmt.Errorf("SOCK_DESTROY: no acknowledgement in %d messages", len(msgs))
}
