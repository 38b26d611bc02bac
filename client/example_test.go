package client_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server/servertest"
)

// startServer runs a Canopy server on a loopback port over a temporary
// store, for the examples; it returns the address and a stop function.
func startServer() (string, func()) {
	dir, err := os.MkdirTemp("", "canopy-example-")
	if err != nil {
		log.Fatal(err)
	}
	s, err := servertest.New(dir, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	return s.Addr, func() { s.Stop(); os.RemoveAll(dir) }
}

func Example() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// An organisation: a Candidates folder with a class, and a teacher who
	// may edit that class.
	_, err = c.Write(ctx,
		&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "acme"}}},
		&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "it1", Parent: "acme"}}},
		&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "teachers", Parent: "acme"}}},
		&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "tom", Class: "staff", Home: "teachers"}}},
		&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "carl", Class: "candidate", Home: "it1"}}},
		&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: &pb.Grant{Id: "teach-it1",
			Holder: client.Folder("teachers"), Target: client.Folder("it1"), Rights: []string{"edit"}}}},
	)
	if err != nil {
		log.Fatal(err)
	}

	for _, right := range []string{"edit", "assign"} {
		d, err := c.Check(ctx, "tom", right, client.User("carl"))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("tom", right, "carl:", d.Allowed, d.Reason)
	}
	for id, err := range c.LookupResources(ctx, "tom", "read", pb.ObjectKind_OBJECT_KIND_USER) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("tom may read", id)
	}

	// Follow tom's access: what he has, then what a change takes away.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := true
	for m, err := range c.WatchAccess(wctx, "tom") {
		if err != nil {
			log.Fatal(err)
		}
		for _, a := range m.GetGained() {
			fmt.Println("tom has", a.GetRights(), "on", a.GetOn().GetKind(), a.GetOn().GetId())
		}
		for _, a := range m.GetLost() {
			fmt.Println("tom lost", a.GetRights(), "on", a.GetOn().GetKind(), a.GetOn().GetId(),
				"when grant", m.GetCause().GetRemoveGrant().GetId(), "was removed")
		}
		if !first {
			break
		}
		first = false
		if _, err := c.Write(ctx, &pb.Mutation{Op: &pb.Mutation_RemoveGrant{RemoveGrant: &pb.RemoveGrant{Id: "teach-it1"}}}); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// tom edit carl: true REASON_ALLOWED
	// tom assign carl: false REASON_NO_GRANT
	// tom may read carl
	// tom may read tom
	// tom has [edit read] on OBJECT_KIND_FOLDER it1
	// tom has [read] on OBJECT_KIND_USER tom
	// tom lost [edit read] on OBJECT_KIND_FOLDER it1 when grant teach-it1 was removed
}

// A batch built fluently, written only if nothing else was committed
// since the revision it was planned against, then read back fresh.
func ExampleClient_Batch() {
	addr, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	st, err := c.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	rev, err := c.Batch().
		IfRevision(st.GetRevision()).
		CreateFolder("acme", "Acme Training", "").
		CreateFolder("admin", "Admin", "acme").
		SetPlacementRule("admin", "staff").
		CreateUser("alice", "Alice Admin", "staff", "admin").
		AddGrant("admins", client.Folder("admin"), client.Folder("acme"), "edit").
		Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed at", rev)

	// The same precondition again fails: someone (we) wrote since.
	_, err = c.Batch().IfRevision(st.GetRevision()).CreateFolder("beta", "", "").Commit(ctx)
	fmt.Println("stale:", status.Code(err))

	d, err := c.Check(ctx, "alice", "read", client.Folder("admin"), client.Fresh())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice reads admin:", d.Allowed, "at", d.Revision)
	// Output:
	// committed at 2
	// stale: FailedPrecondition
	// alice reads admin: true at 2
}

// Watch from the start of the log: every committed batch, in order; it
// would reconnect and resume by itself after a dropped connection.
func ExampleClient_Watch() {
	addr, stop := startServer()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.Dial(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Batch().CreateFolder("acme", "", "").CreateUser("ann", "", "staff", "acme").Commit(ctx); err != nil {
		log.Fatal(err)
	}
	for m, err := range c.Watch(ctx, 2, nil) {
		if err != nil {
			log.Fatal(err)
		}
		for _, mu := range m.GetMutations() {
			fmt.Println(m.GetRevision(), mu.GetCreateFolder().GetId()+mu.GetCreateUser().GetId())
		}
		break
	}
	// Output:
	// 2 acme
	// 2 ann
}
