package etcdstore

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// timedKV gives every request a deadline, and fails it at once when the
// member it reaches has no leader (quorum lost) instead of waiting: a
// write then fails with a cause, and checks, which never reach etcd,
// go on.
type timedKV struct {
	kv      clientv3.KV
	timeout time.Duration
}

func (t timedKV) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(ctx), t.timeout)
}

func (t timedKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.kv.Get(ctx, key, opts...)
}

func (t timedKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.kv.Put(ctx, key, val, opts...)
}

func (t timedKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	ctx, cancel := t.ctx(ctx)
	defer cancel()
	return t.kv.Delete(ctx, key, opts...)
}

// Txn begins a transaction whose Commit has the deadline.
func (t timedKV) Txn(ctx context.Context) clientv3.Txn {
	ctx, cancel := t.ctx(ctx)
	return timedTxn{t.kv.Txn(ctx), cancel}
}

// timedTxn ends its deadline's timer once committed.
type timedTxn struct {
	clientv3.Txn
	cancel context.CancelFunc
}

func (t timedTxn) If(cs ...clientv3.Cmp) clientv3.Txn { return timedTxn{t.Txn.If(cs...), t.cancel} }
func (t timedTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	return timedTxn{t.Txn.Then(ops...), t.cancel}
}
func (t timedTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	return timedTxn{t.Txn.Else(ops...), t.cancel}
}

func (t timedTxn) Commit() (*clientv3.TxnResponse, error) {
	defer t.cancel()
	return t.Txn.Commit()
}
