package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/starling-xmpp/starling/node/storage"
)

// UpsertClusterNode implements storage.ClusterNodes.
func (s *Store) UpsertClusterNode(ctx context.Context, n storage.ClusterNode) error {
	if n.Hostname == "" {
		return fmt.Errorf("upsert cluster node: %w: empty hostname", storage.ErrInvalid)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO cluster_nodes (hostname, secondary, password, port, last_update, cpu_usage, mem_usage)
		VALUES ($1, $2, $3, $4, clock_timestamp(), $5, $6)
		ON CONFLICT (hostname) DO UPDATE SET secondary = excluded.secondary, password = excluded.password, port = excluded.port,
			last_update = excluded.last_update, cpu_usage = excluded.cpu_usage, mem_usage = excluded.mem_usage`,
		n.Hostname, n.Secondary, n.Password, n.Port, n.CPUUsage, n.MemUsage)
	if err != nil {
		return fmt.Errorf("upsert cluster node %s: %w", n.Hostname, err)
	}
	return nil
}

// ClusterNodes implements storage.ClusterNodes.
func (s *Store) ClusterNodes(ctx context.Context, freshWithin time.Duration) ([]storage.ClusterNode, error) {
	q := `SELECT hostname, secondary, password, port, last_update, cpu_usage, mem_usage FROM cluster_nodes`
	var args []any
	if freshWithin > 0 {
		q += ` WHERE last_update >= clock_timestamp() - $1::bigint * interval '1 microsecond'`
		args = append(args, freshWithin.Microseconds())
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY hostname`, args...)
	if err != nil {
		return nil, fmt.Errorf("read cluster nodes: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.ClusterNode, error) {
		var n storage.ClusterNode
		err := row.Scan(&n.Hostname, &n.Secondary, &n.Password, &n.Port, &n.LastUpdate, &n.CPUUsage, &n.MemUsage)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("read cluster nodes: %w", err)
	}
	if len(nodes) == 0 {
		return nil, nil
	}
	return nodes, nil
}

// DeleteStaleClusterNodes implements storage.ClusterNodes.
func (s *Store) DeleteStaleClusterNodes(ctx context.Context, olderThan time.Duration) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM cluster_nodes WHERE last_update < clock_timestamp() - $1::bigint * interval '1 microsecond'`, olderThan.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("delete stale cluster nodes: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// DeleteClusterNode implements storage.ClusterNodes.
func (s *Store) DeleteClusterNode(ctx context.Context, hostname string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM cluster_nodes WHERE hostname = $1`, hostname); err != nil {
		return fmt.Errorf("delete cluster node %s: %w", hostname, err)
	}
	return nil
}
