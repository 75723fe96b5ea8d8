// Package bpf holds Starling's eBPF traffic-throttling programs
// (throttle.c) and the Go bindings bpf2go generates from them.
//
// The generated throttle_bpfel.go and throttle_bpfel.o are committed so that
// building Starling needs no C toolchain; `go generate ./bpf/...` rebuilds
// them with clang (.ci/bpf.sh checks that the committed files match). The
// package only describes the objects; package loader loads, configures and
// attaches them.
package bpf

//go:generate go tool bpf2go -target bpfel -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3" -type event -type conn_state -type dir_state -type policy -type port_stats -type direction -type action -type scope -type event_kind -type dir_flag Throttle throttle.c -- -I/usr/include/x86_64-linux-gnu
