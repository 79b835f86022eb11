# ./run.sh --demo true: the offline demo on the 12 LJ Speech clips shipped in demo/. The
# shipped LJSpeech model is fine-tuned 50 steps on 8 of them, then 2 dev and 2 eval clips are
# decoded and scored (stages -1..4). These are run.sh's defaults in that mode: any option
# given on the command line still wins (./run.sh --demo true --stop_stage 3).
db_root=dump/demo_db
corpus_cmd="python3 local/make_demo_db.py"   # stage -1: demo/ expanded to an LJSpeech folder
corpus_name="the LJ Speech demo clips in demo/"
num_dev=2
num_eval=2
nj=2
inference_nj=2
stop_stage=4
tag=demo
conf=conf/finetune_specgrad_ljspeech.yaml
pretrained=ljspeech
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"  # yours, when set
