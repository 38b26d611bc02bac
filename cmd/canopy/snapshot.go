package main

import (
	"context"
	"slices"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// snapshot is the whole state of a server at one revision, as Export
// gives it, indexed for drawing.
type snapshot struct {
	revision uint64
	folders  map[string]*pb.Folder
	children map[string][]string // parent ("" for the roots) -> child ids, sorted
	users    map[string]*pb.User
	placed   map[string][]string // folder -> users whose home or extra group it is
	grants   []*pb.Grant
	locks    []*pb.Lock
	rules    map[string][]string // folder -> classes admitted
	rights   []*pb.Right
	self     []string
}

// exportSnapshot reads the server's state through Export.
func exportSnapshot(ctx context.Context, cl *client.Client, opts []client.ReadOption) (*snapshot, error) {
	s := &snapshot{folders: map[string]*pb.Folder{}, children: map[string][]string{}, users: map[string]*pb.User{},
		placed: map[string][]string{}, rules: map[string][]string{}}
	for m, err := range cl.Export(ctx, &s.revision, opts...) {
		if err != nil {
			return nil, err
		}
		switch op := m.GetOp().(type) {
		case *pb.Mutation_CreateFolder:
			f := op.CreateFolder
			s.folders[f.GetId()] = f
			s.children[f.GetParent()] = append(s.children[f.GetParent()], f.GetId())
		case *pb.Mutation_CreateUser:
			u := op.CreateUser
			s.users[u.GetId()] = u
			for _, f := range append([]string{u.GetHome()}, u.GetExtraGroups()...) {
				s.placed[f] = append(s.placed[f], u.GetId())
			}
		case *pb.Mutation_AddExtraGroup:
			g := op.AddExtraGroup
			if u := s.users[g.GetUser()]; u != nil {
				u.ExtraGroups = append(u.ExtraGroups, g.GetFolder())
			}
			s.placed[g.GetFolder()] = append(s.placed[g.GetFolder()], g.GetUser())
		case *pb.Mutation_AddGrant:
			s.grants = append(s.grants, op.AddGrant)
		case *pb.Mutation_AddLock:
			s.locks = append(s.locks, op.AddLock)
		case *pb.Mutation_SetPlacementRule:
			s.rules[op.SetPlacementRule.GetFolder()] = op.SetPlacementRule.GetClasses()
		case *pb.Mutation_PutRight:
			s.rights = append(s.rights, op.PutRight)
		case *pb.Mutation_SetSelfRights:
			s.self = op.SetSelfRights.GetRights()
		}
	}
	for _, ids := range s.children {
		slices.Sort(ids)
	}
	for _, ids := range s.placed {
		slices.Sort(ids)
	}
	return s, nil
}

// names reports whether ref names the folder id.
func namesFolder(ref *pb.ObjectRef, id string) bool {
	return ref.GetKind() == pb.ObjectKind_OBJECT_KIND_FOLDER && ref.GetId() == id
}
