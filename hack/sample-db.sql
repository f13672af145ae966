-- A small database with the types and objects a real one has: several schemas, jsonb,
-- arrays, bytea, numeric, timestamptz, an index, a view, a sequence and a foreign key.
CREATE SCHEMA shop;
CREATE SCHEMA audit;

CREATE SEQUENCE shop.invoice_number START 1000;

CREATE TABLE shop.customers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    tags text[] NOT NULL DEFAULT '{}',
    profile jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customers(id),
    invoice bigint NOT NULL DEFAULT nextval('shop.invoice_number'),
    total numeric(12, 2) NOT NULL,
    placed_at timestamptz NOT NULL,
    attachment bytea
);
CREATE INDEX orders_customer_placed ON shop.orders (customer_id, placed_at);

CREATE TABLE audit.events (
    id bigserial PRIMARY KEY,
    happened_at timestamptz NOT NULL DEFAULT now(),
    payload jsonb NOT NULL
);

CREATE VIEW shop.customer_totals AS
    SELECT c.id, c.name, count(o.id) AS orders, coalesce(sum(o.total), 0) AS spent
    FROM shop.customers c LEFT JOIN shop.orders o ON o.customer_id = c.id
    GROUP BY c.id, c.name;

INSERT INTO shop.customers (name, email, tags, profile)
SELECT 'customer ' || i, 'c' || i || '@example.com',
       ARRAY['tier-' || (i % 3), 'region-' || (i % 5)],
       jsonb_build_object('score', i * 7 % 100, 'newsletter', i % 2 = 0, 'note', md5(i::text))
FROM generate_series(1, 2000) AS i;

INSERT INTO shop.orders (customer_id, total, placed_at, attachment)
SELECT 1 + (i % 2000), round((random() * 500)::numeric, 2),
       timestamptz '2026-01-01 00:00:00+00' + i * interval '37 minutes',
       CASE WHEN i % 10 = 0 THEN decode(md5(i::text), 'hex') END
FROM generate_series(1, 20000) AS i;

INSERT INTO audit.events (payload)
SELECT jsonb_build_object('kind', 'login', 'customer', i % 2000, 'ip', '10.0.' || (i % 255) || '.' || (i % 7))
FROM generate_series(1, 5000) AS i;
