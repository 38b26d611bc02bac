// Hand-written, not generated: structural checks of requests, called by
// go-grpc-middleware's validator interceptor before a handler runs. They
// need no state (required fields, well-formed references, sizes); what
// needs the index (does this id exist, may this move happen) is the
// index's to refuse.

package canopyv1

import "fmt"

// Limits on the size of a request.
const (
	MaxMutations = 100_000 // per Write, as graph.MaxBatchSize
	MaxPageSize  = 100_000 // per list or lookup page
	MaxIDBytes   = 256     // per id, as graph.MaxIDLen
)

func required(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is required", field)
	case len(v) > MaxIDBytes:
		return fmt.Errorf("%s is longer than %d bytes", field, MaxIDBytes)
	}
	return nil
}

// validRef accepts an unset reference, or one with a kind and an id.
func validRef(field string, r *ObjectRef) error {
	if r == nil {
		return nil
	}
	switch r.GetKind() {
	case ObjectKind_OBJECT_KIND_FOLDER, ObjectKind_OBJECT_KIND_USER:
		if err := required("id", r.GetId()); err != nil {
			return fmt.Errorf("%s.%w", field, err) // named only when wrong: a check allocates nothing here
		}
		return nil
	case ObjectKind_OBJECT_KIND_UNSPECIFIED:
		if r.GetId() == "" {
			return nil
		}
	}
	id := r.GetId()
	if len(id) > MaxIDBytes {
		id = fmt.Sprintf("%.64s…[%d bytes]", id, len(id))
	}
	return fmt.Errorf("%s %q: kind must be OBJECT_KIND_FOLDER or OBJECT_KIND_USER", field, id)
}

func validPage(size uint32) error {
	if size > MaxPageSize {
		return fmt.Errorf("page_size %d is over %d", size, MaxPageSize)
	}
	return nil
}

func first(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// Validate checks the request's shape.
func (r *CheckRequest) Validate() error {
	return first(required("user", r.GetUser()), required("right", r.GetRight()), validRef("resource", r.GetResource()))
}

// Validate checks the request's shape.
func (r *ExplainRequest) Validate() error {
	return first(required("user", r.GetUser()), required("right", r.GetRight()), validRef("resource", r.GetResource()))
}

// Validate checks the batch's shape: it has items. Each item's own shape
// (CheckItem.Problem) is that item's result, so that one malformed item
// does not fail the others.
func (r *BatchCheckRequest) Validate() error {
	if len(r.GetItems()) == 0 {
		return fmt.Errorf("items: at least one check is required")
	}
	return nil
}

// Problem says what is wrong with the item's shape, as Validate says it of
// a CheckRequest; nil when nothing is.
func (it *CheckItem) Problem() error {
	return first(required("user", it.GetUser()), required("right", it.GetRight()), validRef("resource", it.GetResource()))
}

// Validate checks the request's shape.
func (r *LookupResourcesRequest) Validate() error {
	if k := r.GetKind(); k != ObjectKind_OBJECT_KIND_FOLDER && k != ObjectKind_OBJECT_KIND_USER {
		return fmt.Errorf("kind must be OBJECT_KIND_FOLDER or OBJECT_KIND_USER")
	}
	return first(required("user", r.GetUser()), required("right", r.GetRight()), validPage(r.GetPageSize()))
}

// Validate checks the request's shape.
func (r *LookupSubjectsRequest) Validate() error {
	return first(required("right", r.GetRight()), validRef("resource", r.GetResource()), validPage(r.GetPageSize()))
}

// Validate checks the request's shape.
func (r *EffectiveAccessRequest) Validate() error { return required("user", r.GetUser()) }

func validMutations(ms []*Mutation) error {
	if len(ms) > MaxMutations {
		return fmt.Errorf("mutations: %d is over %d", len(ms), MaxMutations)
	}
	for i, m := range ms {
		if m.GetOp() == nil {
			return fmt.Errorf("mutations[%d] sets no operation", i)
		}
	}
	return nil
}

// Validate checks the request's shape.
func (r *WriteRequest) Validate() error {
	if len(r.GetMutations()) == 0 {
		return fmt.Errorf("mutations: at least one is required")
	}
	return validMutations(r.GetMutations())
}

// Validate checks the request's shape.
func (r *ImportRequest) Validate() error { return validMutations(r.GetMutations()) }

// Validate checks the request's shape.
func (r *GetFolderRequest) Validate() error { return required("id", r.GetId()) }

// Validate checks the request's shape.
func (r *GetUserRequest) Validate() error { return required("id", r.GetId()) }

// Validate checks the request's shape. An empty parent lists the
// organisations' roots.
func (r *ListFoldersRequest) Validate() error {
	var long error
	if len(r.GetParent()) > MaxIDBytes {
		long = fmt.Errorf("parent is longer than %d bytes", MaxIDBytes)
	}
	return first(long, validPage(r.GetPageSize()))
}

// Validate checks the request's shape.
func (r *ListUsersRequest) Validate() error {
	return first(required("folder", r.GetFolder()), validPage(r.GetPageSize()))
}

// Validate checks the request's shape.
func (r *ListGrantsRequest) Validate() error {
	return first(validRef("holder", r.GetHolder()), validRef("target", r.GetTarget()), validPage(r.GetPageSize()))
}

// Validate checks the request's shape.
func (r *ListLocksRequest) Validate() error {
	return first(validRef("target", r.GetTarget()), validPage(r.GetPageSize()))
}

// Validate checks that a user is named.
func (r *WatchAccessRequest) Validate() error { return required("user", r.GetUser()) }

// Validate checks the request's shape.
func (r *HistoryRequest) Validate() error {
	if t, u := r.GetSince(), r.GetUntil(); t != nil && u != nil && !t.AsTime().Before(u.AsTime()) {
		return fmt.Errorf("since %s is not before until %s", t.AsTime().Format("2006-01-02T15:04:05Z07:00"), u.AsTime().Format("2006-01-02T15:04:05Z07:00"))
	}
	if f, to := r.GetFromRevision(), r.GetToRevision(); to > 0 && f > to {
		return fmt.Errorf("from_revision %d is after to_revision %d", f, to)
	}
	return validPage(r.GetPageSize())
}
