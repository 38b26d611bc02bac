// Package client is the Go client of Canopy. It imports only the API
// (proto/canopy/v1) and grpc.
//
// # Connecting
//
// Dial connects to a server; on loopback nothing more is needed:
//
//	c, err := client.Dial("127.0.0.1:7070")
//	if err != nil { ... }
//	defer c.Close()
//
// A server with a tokens file wants a bearer token, and a token travels
// only over TLS unless the server is on loopback:
//
//	creds := credentials.NewTLS(&tls.Config{RootCAs: pool})
//	c, err := client.Dial("canopy.internal:7070", client.WithTLS(creds), client.WithToken(token))
//
// # Writing
//
// Everything changes through Write, one atomic batch at a time:
//
//	rev, err := c.Write(ctx,
//	    &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "acme"}}},
//	    &pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "alice", Class: "staff", Home: "acme"}}},
//	)
//
// A refused batch changes nothing, and its error has the gRPC code to act
// on (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition) and a
// message naming the offending id.
//
// # Asking
//
// Check answers one question; the decision says why when it is denied:
//
//	d, err := c.Check(ctx, "alice", "edit", client.User("carl"))
//	if d.Allowed { ... }
//
// Pass a nil resource to check a capability ("user_administrator"). For
// many questions at one revision use c.Access.BatchCheck; for the path
// behind a decision, c.Access.Explain.
//
// LookupResources iterates over everything a user may reach, following
// page tokens:
//
//	for id, err := range c.LookupResources(ctx, "inspector", "read", pb.ObjectKind_OBJECT_KIND_USER) {
//	    if err != nil { ... }
//	    fmt.Println(id)
//	}
//
// # Reading your own writes
//
// Every answer carries the revision it was computed at, and Write returns
// the revision it committed. To read a write back, ask for at least that
// revision (the server waits, within the call's deadline):
//
//	c.Access.Check(ctx, &pb.CheckRequest{..., Consistency: &pb.Consistency{
//	    Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: rev}}})
package client
