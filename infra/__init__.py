"""Townhall infrastructure: the CDK app (`infra.app`, `infra.stacks`) and the local twin."""
