DROP TABLE directives;
