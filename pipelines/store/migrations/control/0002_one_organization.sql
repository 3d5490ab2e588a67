-- The control store, version 2: one organization per deployment.
-- Mail stores, Dagster partitions and the sync engine key on the customer id alone, so a second organization
-- using a customer id the first one uses would share that customer's mail. No Mailroom release could add an
-- organization outside its tests; from here on the schema refuses to.

CREATE TRIGGER one_organization BEFORE INSERT ON organizations
BEGIN
    SELECT RAISE(ABORT, 'Mailroom serves one organization per deployment');
END;
