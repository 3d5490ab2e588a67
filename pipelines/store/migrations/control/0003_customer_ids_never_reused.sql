-- The control store, version 3: a customer's integer id (Carbon's organization_user id) is never given twice.
-- SQLite gives a new row the largest id plus one, so a customer created after the newest one was purged got
-- the purged customer's id back, and a stale reference to it (a delete request's customer_pk, a client's
-- cached `id`) would name the new customer. New ids now start above every id ever given, which this table
-- keeps (ControlStore.update_customers numbers new rows from it).

CREATE TABLE customer_ids_given (last INTEGER NOT NULL);
INSERT INTO customer_ids_given SELECT coalesce(max(id), 0) FROM customers;

CREATE TRIGGER customer_ids_given_grow AFTER INSERT ON customers
BEGIN
    UPDATE customer_ids_given SET last = max(last, NEW.id);
END;
