package peer

import (
	"context"
	"net"
)

type netTCPAddr = net.TCPAddr

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

type ctxT = context.Context

func bg() context.Context { return context.Background() }
