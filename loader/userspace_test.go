//go:build linux

package loader

import (
	"io"
	"net"
	"testing"
)

func TestUserspaceLostEvents(t *testing.T) {
	u, err := NewUserspace(Options{EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	r := &rig{m: u}
	for range 2 {
		node, _, peer := r.link(t, "tcp4", BytePolicy{PerWindow: 10, Action: ActionDisc})
		if _, err := node.Write(make([]byte, 11)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
	}
	var lost uint64
	for _, pt := range u.Totals() {
		lost += pt.LostEvents
	}
	if lost != 1 || len(u.Events()) != 1 {
		t.Fatalf("%d events lost, %d buffered; want 1 and 1", lost, len(u.Events()))
	}
}

func TestUserspaceUntracked(t *testing.T) {
	u, err := NewUserspace(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// No policy on either port: the connection is returned as it is.
	got, id, err := u.Track(c)
	if err != nil || got != c || id == 0 {
		t.Fatalf("Track = %T, %d, %v", got, id, err)
	}
	if _, ok := u.Conn(id); ok {
		t.Fatal("unpoliced connection tracked")
	}
	u.Close()
	if _, _, err := u.Track(c); err == nil {
		t.Fatal("Track after Close succeeded")
	}
	if err := u.SetPortPolicy(1, BytePolicy{}); err == nil {
		t.Fatal("SetPortPolicy after Close succeeded")
	}
	if _, ok := <-u.Events(); ok {
		t.Fatal("events open after Close")
	}
}
