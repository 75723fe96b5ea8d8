// Package sasl implements the SASL mechanisms Starling offers to XMPP clients
// (RFC 6120 §6): SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
// RFC 7677), each also as -PLUS with the tls-exporter (RFC 9266) and
// tls-server-end-point (RFC 5929) channel bindings, and PLAIN (RFC 4616).
//
// The package holds no sockets and no XML: a [Server] or [Client] is a step
// machine fed with raw (already base64-decoded) SASL payloads. The XMPP
// stream layer turns <auth/>, <challenge/>, <response/>, <success/> and
// <failure/> into calls of Step, using [DecodePayload] and [EncodePayload] for
// the base64 and "=" rules, and [Failure.AppendXML] for the failure element.
//
// Passwords are never stored: [Credentials] hold, per hash, the salt, the
// iteration count, StoredKey and ServerKey. A SCRAM login therefore costs the
// server a few HMACs and no PBKDF2; PLAIN has to run PBKDF2 once per login to
// check the password against the same stored keys.
//
// Usernames are prepared with the PRECIS UsernameCaseMapped profile and
// passwords with OpaqueString (RFC 8265), so "Juliet" and "juliet" are the
// same account and the stored keys match whatever normalisation form the
// client typed the password in.
//
// A user that does not exist fails exactly like a wrong password: the server
// answers with a salt derived from a server secret and the username, so the
// same unknown name always gets the same salt, and the final comparison runs
// in constant time either way.
//
// A c2s session wires it up like this (names from this package):
//
//	types, cb := ServerBinding(&state, leaf)       // nil state/cb when not on TLS
//	offer := Mechanisms(onTLS, types)              // <mechanisms/>, plus AppendChannelBindingFeature(types)
//	srv, err := NewServer(selected, ServerConfig{Lookup: users.Credentials,
//		ChannelBinding: cb, AdvertisedPlus: len(types) > 0, TLS: onTLS,
//		Authorize: ownBareJIDOnly, Secret: clusterSecret})
//	data, err := DecodePayload(authText)           // then, for each client message:
//	out, done, err := srv.Step(ctx, data)          // <challenge/>, <success/> or err.(*Failure).AppendXML
//
// The client side ([NewClient], [Client.Step]) serves tests and the load
// generator; its [SaltCache] lets one process log the same accounts in
// thousands of times without paying PBKDF2 each time.
package sasl
