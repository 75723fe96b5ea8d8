// Package xmpp is the root of Starling's protocol library: the XML
// tokenizer (xml), addresses (jid), stanza views and errors (stanza), SASL
// mechanisms (sasl) and stream negotiation (stream). These packages turn
// bytes into protocol values and back and hold no sockets, servers or
// storage; they know nothing of node/, so each can be tested and fuzzed on
// its own and reused by clients and tools.
package xmpp
