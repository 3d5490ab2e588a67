"""The `customers` partitions: one dynamic partition key per customer id, kept in the Dagster instance."""

import dagster as dg

customers = dg.DynamicPartitionsDefinition(name="customers")


def add_customer_partition(instance: dg.DagsterInstance, customer_id: str) -> bool:
    """Add the customer's partition unless it exists; True if it was added."""
    if instance.has_dynamic_partition(customers.name, customer_id):
        return False
    instance.add_dynamic_partitions(customers.name, [customer_id])
    return True


def remove_customer_partition(instance: dg.DagsterInstance, customer_id: str) -> bool:
    """Remove the customer's partition (its run and materialization history stays); True if it existed."""
    if not instance.has_dynamic_partition(customers.name, customer_id):
        return False
    instance.delete_dynamic_partition(customers.name, customer_id)
    return True


def customer_partitions(instance: dg.DagsterInstance) -> list[str]:
    """Every customer id that has a partition."""
    return list(customers.get_partition_keys(dynamic_partitions_store=instance))
