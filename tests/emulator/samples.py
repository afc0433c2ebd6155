# ruff: noqa: E501  (exposition lines are kept whole, as the servers write them)
"""Hand-written scrapes in each real server's exposition format (names and labels from the
servers' sources: vllm/v1/metrics/loggers.py, TGI's router, tensorrt_llm/metrics/collector.py
as mounted by tensorrt_llm/serve/openai_server.py)."""

VLLM = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="google/gemma-3-27b-it"} 3.0
vllm:num_requests_running{engine="1",model_name="google/gemma-3-27b-it"} 1.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="google/gemma-3-27b-it"} 2.0
vllm:num_requests_waiting{engine="1",model_name="google/gemma-3-27b-it"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="google/gemma-3-27b-it"} 0.25
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="google/gemma-3-27b-it"} 10.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="google/gemma-3-27b-it"} 5.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="google/gemma-3-27b-it"} 1.0
# HELP vllm:request_success_created Count of successfully processed requests.
# TYPE vllm:request_success_created gauge
vllm:request_success_created{engine="0",finished_reason="stop",model_name="google/gemma-3-27b-it"} 1.7e+09
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="google/gemma-3-27b-it"} 12.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="google/gemma-3-27b-it"} 16.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="google/gemma-3-27b-it"} 16.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="google/gemma-3-27b-it"} 2.4
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="5.0",model_name="google/gemma-3-27b-it"} 14.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="google/gemma-3-27b-it"} 16.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="google/gemma-3-27b-it"} 16.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="google/gemma-3-27b-it"} 48.0
"""

# vLLM before v0.10 named the KV-cache gauge differently and had no `engine` label.
VLLM_OLD = """\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 2.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.5
"""

# TGI's router uses metrics-exporter-prometheus: TYPE lines, counters without `_total`.
TGI = """\
# TYPE tgi_request_count counter
tgi_request_count 17
# TYPE tgi_request_success counter
tgi_request_success 15
# TYPE tgi_queue_size gauge
tgi_queue_size 4
# TYPE tgi_batch_current_size gauge
tgi_batch_current_size 8
# TYPE tgi_batch_current_max_tokens gauge
tgi_batch_current_max_tokens 12000
# TYPE tgi_request_duration histogram
tgi_request_duration_bucket{le="0.5"} 3
tgi_request_duration_bucket{le="+Inf"} 15
tgi_request_duration_sum 30.5
tgi_request_duration_count 15
# TYPE tgi_batch_inference_count counter
tgi_batch_inference_count{method="decode"} 292
tgi_batch_inference_count{method="prefill"} 1
"""

# trtllm-serve (--enable-... return_perf_metrics) at /prometheus/metrics; its labels
# really are model_name="undefined", engine_type="undefined" in openai_server.py.
TRTLLM = """\
# HELP trtllm_request_success_total Count of successfully processed requests.
# TYPE trtllm_request_success_total counter
trtllm_request_success_total{engine_type="undefined",finished_reason="stop",model_name="undefined"} 7.0
trtllm_request_success_total{engine_type="undefined",finished_reason="length",model_name="undefined"} 2.0
# HELP trtllm_e2e_request_latency_seconds Histogram of end to end request latency in seconds.
# TYPE trtllm_e2e_request_latency_seconds histogram
trtllm_e2e_request_latency_seconds_bucket{engine_type="undefined",le="+Inf",model_name="undefined"} 9.0
trtllm_e2e_request_latency_seconds_count{engine_type="undefined",model_name="undefined"} 9.0
trtllm_e2e_request_latency_seconds_sum{engine_type="undefined",model_name="undefined"} 18.0
# HELP trtllm_time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE trtllm_time_to_first_token_seconds histogram
trtllm_time_to_first_token_seconds_bucket{engine_type="undefined",le="+Inf",model_name="undefined"} 9.0
trtllm_time_to_first_token_seconds_count{engine_type="undefined",model_name="undefined"} 9.0
trtllm_time_to_first_token_seconds_sum{engine_type="undefined",model_name="undefined"} 0.9
# HELP trtllm_kv_cache_utilization KV cache utilization
# TYPE trtllm_kv_cache_utilization gauge
trtllm_kv_cache_utilization{engine_type="undefined",model_name="undefined"} 0.125
# HELP trtllm_num_requests_running Number of active requests
# TYPE trtllm_num_requests_running gauge
trtllm_num_requests_running{engine_type="undefined",model_name="undefined"} 5.0
# HELP trtllm_num_requests_waiting Number of queued requests
# TYPE trtllm_num_requests_waiting gauge
trtllm_num_requests_waiting{engine_type="undefined",model_name="undefined"} 1.0
"""

# trtllm-serve 1.1 (five basic metrics): no running/waiting/KV gauges.
TRTLLM_BASIC = """\
# TYPE trtllm_request_success_total counter
trtllm_request_success_total{engine_type="undefined",finished_reason="stop",model_name="undefined"} 3.0
# TYPE trtllm_e2e_request_latency_seconds histogram
trtllm_e2e_request_latency_seconds_count{engine_type="undefined",model_name="undefined"} 3.0
trtllm_e2e_request_latency_seconds_sum{engine_type="undefined",model_name="undefined"} 6.0
"""
