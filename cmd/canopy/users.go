package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func (a *app) usersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "users",
		Aliases: []string{"user"},
		Short:   "List, create, update, move, place, disable, enable, archive and delete users",
		Example: `  canopy users list candidates --subtree
  canopy users create carl --class candidate --home it1 --name "Carl Candidate"
  canopy users join ian admin-main
  canopy users disable inspector`,
	}
	var subtree bool
	list := &cobra.Command{
		Use:   "list FOLDER",
		Short: "List the users placed in a folder (home or extra group); --subtree: anywhere below it too",
		Example: `  canopy users list it1
  canopy users list acme --subtree -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			out := &pb.ListUsersResponse{}
			for u, err := range cl.Users(ctx, args[0], subtree, a.readFor(cmd)...) {
				if err != nil {
					return err
				}
				out.Users = append(out.Users, u)
			}
			out.Revision = cl.Revision()
			return a.emit(out, func(w io.Writer) error { return userTable(w, out.Users) })
		},
	}
	list.Flags().BoolVar(&subtree, "subtree", false, "users anywhere below the folder too")
	get := &cobra.Command{
		Use:     "get ID",
		Short:   "Show a user",
		Example: "  canopy users get carl",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			u, err := cl.GetUser(ctx, args[0], a.readFor(cmd)...)
			if err != nil {
				return err
			}
			return a.emit(&pb.GetUserResponse{User: u, Revision: cl.Revision()}, func(w io.Writer) error { return userTable(w, []*pb.User{u}) })
		},
	}
	var name, class, home string
	var extras []string
	var state, until string
	create := a.writeCommand(&cobra.Command{
		Use:   "create ID",
		Short: "Create a user in a home folder, optionally with extra groups",
		Example: `  canopy users create carl --class candidate --home it1
  canopy users create inspector --class external --home ofsted --extra parallel-group --active-until 2026-03-06T17:00:00Z`,
		Args: cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		st, err := parseState(state)
		if err != nil {
			return err
		}
		u := &pb.User{Id: args[0], Name: name, Class: class, Home: home, ExtraGroups: extras, State: st}
		if u.ActiveUntil, err = untilFlag(until); err != nil {
			return err
		}
		b.Add(&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: u}})
		return nil
	})
	create.Flags().StringVar(&until, "active-until", "", "the user stops being active then, and the service disables them: an RFC 3339 time, or a duration from now such as 96h")
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&class, "class", "", "the user's class, such as staff or candidate (required)")
	create.Flags().StringVar(&home, "home", "", "the home folder (required)")
	create.Flags().StringArrayVar(&extras, "extra", nil, "an extra group (repeatable)")
	create.Flags().StringVar(&state, "state", "active", "active, disabled or archived")
	create.MarkFlagRequired("class")
	create.MarkFlagRequired("home")

	var newName, newClass string
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change a user's name or class (what is not given stays)",
		Example: `  canopy users update carl --name "Carl C. Candidate"
  canopy users update ian --class staff`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			u, err := cl.GetUser(ctx, args[0], client.Fresh())
			if err != nil {
				return err
			}
			n, c := u.GetName(), u.GetClass()
			if cmd.Flags().Changed("name") {
				n = newName
			}
			if cmd.Flags().Changed("class") {
				c = newClass
			}
			// Applies only if nothing changed since the user was read.
			rev := cl.Revision()
			return a.write(cmd, func(b *client.Batch) error {
				b.IfRevision(rev).UpdateUser(args[0], n, c)
				return nil
			})
		},
	}
	writeFlags(update)
	update.Flags().StringVar(&newName, "name", "", "the new display name")
	update.Flags().StringVar(&newClass, "class", "", "the new class")
	move := a.writeCommand(&cobra.Command{
		Use:     "move ID FOLDER",
		Short:   "Give a user a new home folder",
		Example: "  canopy users move ian admin-main",
		Args:    cobra.ExactArgs(2),
	}, func(args []string, b *client.Batch) error {
		b.MoveUser(args[0], args[1])
		return nil
	})
	join := a.writeCommand(&cobra.Command{
		Use:     "join ID FOLDER",
		Short:   "Place a user in an extra group besides their home",
		Example: "  canopy users join lena parallel-group",
		Args:    cobra.ExactArgs(2),
	}, func(args []string, b *client.Batch) error {
		b.AddExtraGroup(args[0], args[1])
		return nil
	})
	leave := a.writeCommand(&cobra.Command{
		Use:     "leave ID FOLDER",
		Short:   "Take a user out of an extra group",
		Example: "  canopy users leave lena parallel-group",
		Args:    cobra.ExactArgs(2),
	}, func(args []string, b *client.Batch) error {
		b.RemoveExtraGroup(args[0], args[1])
		return nil
	})
	var states []*cobra.Command
	for _, s := range []struct {
		verb  string
		state pb.UserState
		what  string
	}{
		{"disable", pb.UserState_USER_STATE_DISABLED, "Disable a user: nothing is allowed to them until enabled"},
		{"enable", pb.UserState_USER_STATE_ACTIVE, "Make a user active again"},
		{"archive", pb.UserState_USER_STATE_ARCHIVED, "Archive a user: kept, but allowed nothing"},
	} {
		c := a.writeCommand(&cobra.Command{
			Use:     s.verb + " ID",
			Short:   s.what,
			Example: "  canopy users " + s.verb + " inspector",
			Args:    cobra.ExactArgs(1),
		}, func(args []string, b *client.Batch) error {
			at, err := untilFlag(until)
			if err != nil {
				return err
			}
			b.Add(&pb.Mutation{Op: &pb.Mutation_SetUserState{SetUserState: &pb.SetUserState{Id: args[0], State: s.state, ActiveUntil: at}}})
			return nil
		})
		if s.state == pb.UserState_USER_STATE_ACTIVE {
			c.Flags().StringVar(&until, "active-until", "", "active only until then: an RFC 3339 time, or a duration from now such as 96h")
			c.Example += "\n  canopy users enable inspector --active-until 96h"
		}
		states = append(states, c)
	}
	var cascade bool
	del := a.writeCommand(&cobra.Command{
		Use:     "delete ID",
		Short:   "Delete a user; --cascade also removes the grants and locks naming them",
		Example: "  canopy users delete inspector --cascade",
		Args:    cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		b.DeleteUser(args[0], cascade)
		return nil
	})
	del.Flags().BoolVar(&cascade, "cascade", false, "also remove the grants and locks naming the user")
	readAsUserFlag(list)
	readAsUserFlag(get)
	cmd.AddCommand(list, get, create, update, move, join, leave)
	cmd.AddCommand(states...)
	cmd.AddCommand(del)
	return cmd
}

// userTable writes users as a table.
func userTable(w io.Writer, users []*pb.User) error {
	var rows [][]string
	for _, u := range users {
		state := stateWord(u.GetState())
		if u.GetActiveUntil() != nil {
			state += " until " + timeText(u.GetActiveUntil())
		}
		rows = append(rows, []string{u.GetId(), orDash(u.GetName()), u.GetClass(), state, u.GetHome(), orDash(strings.Join(u.GetExtraGroups(), ","))})
	}
	return table(w, "ID\tNAME\tCLASS\tSTATE\tHOME\tEXTRA GROUPS", rows)
}

// parseState reads active, disabled or archived.
func parseState(s string) (pb.UserState, error) {
	v, ok := pb.UserState_value["USER_STATE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("state %q: want active, disabled or archived", s)
	}
	return pb.UserState(v), nil
}

// untilFlag reads an --active-until flag: nil when it is not given.
func untilFlag(v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	at, err := parseWhen(v, time.Now())
	if err != nil {
		return nil, err
	}
	return timestamppb.New(at), nil
}
