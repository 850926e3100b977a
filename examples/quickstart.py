"""Quick start: a custom graph from networkx, trained by the backprop genome and a random genome.

The graph has a 16-neuron superneuron (a dense block of synapses), a pair of neurons joined both
ways (so the forward graph is cyclic and runs in synchronous rounds) and a skip connection. The
task: 4 Gaussian blobs in 8 dimensions.
"""
import networkx as nx
import torch

import graphnet as gn

torch.manual_seed(0)
torch.set_num_threads(1)  # a graph this small runs fastest on one thread
torch.set_num_threads(1)  # a graph this small runs fastest on one thread

# --- the graph: input superneuron -> hidden superneuron -> recurrent pair -> outputs, plus a skip
G = nx.DiGraph()
G.add_node("pixels", role="input", size=8)
G.add_node("hidden", size=16)
G.add_nodes_from(["left", "right"])
G.add_node("classes", role="output", size=4)
G.add_edges_from([("pixels", "hidden"), ("hidden", "left"), ("hidden", "right"),
                  ("left", "right"), ("right", "left"),  # a recurrent pair
                  ("left", "classes"), ("right", "classes"), ("hidden", "classes")])  # skip block
topology = gn.Topology.from_networkx(G, rounds=4)
print(topology)

# --- data: 4 blobs in 8-D, inputs scaled to [0, 1]
centers = torch.rand(4, 8)


def batch(n):
    labels = torch.randint(0, 4, (n,))
    return (centers[labels] + 0.08 * torch.randn(n, 8)).clamp(0, 1), labels


def accuracy(net):
    x, y = batch(1000)
    return (net.predict(x).argmax(-1) == y).float().mean().item()


for name, genome in [("backprop genome (SGD, lr 1.0)", gn.Genome.backprop(lr=1.0, activation="sigmoid")),
                     ("random genome", gn.Genome.random(k=4, seed=3))]:
    net = gn.Network(topology, genome, seed=0)
    before = accuracy(net)
    for step in range(300):
        net.step(*batch(32))
    print(f"{name:32s} accuracy before {before:.2f}  after 300 steps {accuracy(net):.2f}  (chance 0.25)")
