"""The only code that speaks to Microsoft: clouds, identity (MSAL), Graph, error advice."""
