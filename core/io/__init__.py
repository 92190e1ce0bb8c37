"""What crosses the edge: the command line, exports and saved runs, code generation, the verdict."""
