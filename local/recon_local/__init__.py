"""Local runtime and command line: the whole application on one machine, in moto, with no AWS account."""
