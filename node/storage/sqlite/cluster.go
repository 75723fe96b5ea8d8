package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/starling-xmpp/starling/node/storage"
)

// UpsertClusterNode implements storage.ClusterNodes.
func (s *Store) UpsertClusterNode(ctx context.Context, n storage.ClusterNode) error {
	if n.Hostname == "" {
		return fmt.Errorf("upsert cluster node: %w: empty hostname", storage.ErrInvalid)
	}
	return s.tx(ctx, "upsert cluster node "+n.Hostname, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO cluster_nodes (hostname, secondary, password, port, last_update, cpu_usage, mem_usage)
			VALUES (?, ?, ?, ?, `+nowMillis+`, ?, ?)
			ON CONFLICT (hostname) DO UPDATE SET secondary = excluded.secondary, password = excluded.password, port = excluded.port,
				last_update = excluded.last_update, cpu_usage = excluded.cpu_usage, mem_usage = excluded.mem_usage`,
			n.Hostname, n.Secondary, n.Password, n.Port, n.CPUUsage, n.MemUsage)
		return err
	})
}

// ClusterNodes implements storage.ClusterNodes.
func (s *Store) ClusterNodes(ctx context.Context, freshWithin time.Duration) ([]storage.ClusterNode, error) {
	q := `SELECT hostname, secondary, password, port, last_update, cpu_usage, mem_usage FROM cluster_nodes`
	var args []any
	if freshWithin > 0 {
		q += ` WHERE last_update >= ` + nowMillis + ` - ?`
		args = append(args, freshWithin.Milliseconds())
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY hostname`, args...)
	if err != nil {
		return nil, fmt.Errorf("read cluster nodes: %w", err)
	}
	defer rows.Close()
	var nodes []storage.ClusterNode
	for rows.Next() {
		var n storage.ClusterNode
		var ms int64
		if err := rows.Scan(&n.Hostname, &n.Secondary, &n.Password, &n.Port, &ms, &n.CPUUsage, &n.MemUsage); err != nil {
			return nil, fmt.Errorf("read cluster nodes: %w", err)
		}
		n.LastUpdate = time.UnixMilli(ms)
		nodes = append(nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read cluster nodes: %w", err)
	}
	return nodes, nil
}

// DeleteStaleClusterNodes implements storage.ClusterNodes.
func (s *Store) DeleteStaleClusterNodes(ctx context.Context, olderThan time.Duration) (int, error) {
	var n int64
	err := s.tx(ctx, "delete stale cluster nodes", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM cluster_nodes WHERE last_update < `+nowMillis+` - ?`, olderThan.Milliseconds())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// DeleteClusterNode implements storage.ClusterNodes.
func (s *Store) DeleteClusterNode(ctx context.Context, hostname string) error {
	return s.tx(ctx, "delete cluster node "+hostname, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM cluster_nodes WHERE hostname = ?`, hostname)
		return err
	})
}
