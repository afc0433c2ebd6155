"""Pick and Spin replayed on a request trace in simulated time (`pickspin simulate`)."""
