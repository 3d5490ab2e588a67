"""The filter language: parse, render, evaluate and plan mail filters. No I/O."""
